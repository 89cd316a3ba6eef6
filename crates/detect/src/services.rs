//! Names for well-known ports, in words a non-specialist recognises.

/// A short description of the service usually found on `port`.
pub fn describe(port: u16) -> &'static str {
    match port {
        20 | 21 => "file transfer (FTP)",
        22 => "remote login (SSH)",
        23 => "remote login (Telnet, unencrypted)",
        25 | 465 | 587 => "email sending (SMTP)",
        53 => "name lookups (DNS)",
        80 | 8080 | 8000 | 8008 => "a website (HTTP)",
        110 | 995 => "email collection (POP3)",
        123 => "time service (NTP)",
        135 | 139 | 445 => "Windows file sharing (SMB)",
        143 | 993 => "email collection (IMAP)",
        161 => "device management (SNMP)",
        389 | 636 => "directory service (LDAP)",
        443 | 8443 => "a secure website (HTTPS)",
        500 | 4500 => "a VPN (IPsec)",
        1194 => "a VPN (OpenVPN)",
        1433 => "a database (Microsoft SQL Server)",
        1723 => "a VPN (PPTP)",
        1883 => "device messaging (MQTT)",
        2375 | 2376 => "container management (Docker)",
        3306 => "a database (MySQL)",
        3389 => "Remote Desktop (RDP)",
        5060 | 5061 => "internet telephony (SIP)",
        5432 => "a database (PostgreSQL)",
        5900..=5903 => "remote screen sharing (VNC)",
        6379 => "a database (Redis)",
        8123 => "home automation (Home Assistant)",
        9200 => "a search database (Elasticsearch)",
        27017 => "a database (MongoDB)",
        51820 => "a VPN (WireGuard)",
        _ => "a network service",
    }
}

/// True for services that should rarely be open to the whole internet.
pub fn is_risky(port: u16) -> bool {
    matches!(
        port,
        21 | 23 | 135 | 139 | 445 | 1433 | 2375 | 3306 | 3389 | 5432 | 5900
            ..=5903 | 6379 | 9200 | 27017
    )
}
