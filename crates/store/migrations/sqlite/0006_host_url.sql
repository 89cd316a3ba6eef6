-- Version 6: host names and URLs where the log carries them (Suricata HTTP, TLS, DNS).
ALTER TABLE events ADD COLUMN host TEXT;
ALTER TABLE events ADD COLUMN url TEXT;
