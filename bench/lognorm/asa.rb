version=2
rule=:<%pri:number%>%mon:word% %day:number% %year:number% %time:char-to{"extradata":" "}% %%ASA-%sev:number%-%msgid:number%: %action:word% %proto:word% src %srcif:char-to{"extradata":":"}%:%src:ipv4%/%spt:number% dst %dstif:char-to{"extradata":":"}%:%dst:ipv4%/%dpt:number% by access-group %acl:quoted-string% %rest:rest%
