version=2
# time, interfaces, source/destination address and port, protocol, action (from the prefix)
rule=:%time:date-rfc3164% %host:word% kernel: [%uptime:char-to{"extradata":"]"}%] [UFW %action:char-to{"extradata":"]"}%] IN=%in:word% OUT= MAC=%mac:word% SRC=%src:ipv4% DST=%dst:ipv4% LEN=%len:number% TOS=%tos:word% PREC=%prec:word% TTL=%ttl:number% ID=%id:number% PROTO=%proto:word% SPT=%spt:number% DPT=%dpt:number% %rest:rest%
