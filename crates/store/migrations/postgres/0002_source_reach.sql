-- Campaign detection asks, per source, how many members saw it lately (Store::source_reach).
CREATE INDEX rollup_src_by_source ON rollup_src(src_ip, day) INCLUDE (member_id);
