# Sourced by the two lognormalizer comparisons: writes N generated KIND lines to FILE and stops
# the run unless both tools understand every one (or the comparison means nothing). Expects $wh
# (the watchhouse binary) and $out (a scratch directory).
#   lognorm_lines KIND N FILE
lognorm_lines() {
  local kind=$1 n=$2 file=$3 unparsed
  python3 bench/gen-lines.py "$kind" "$n" > "$file"
  "$wh" parse --summary < "$file" 2> "$out/check" > /dev/null
  grep -q "could not parse 0" "$out/check" || { echo "watchhouse did not parse every $kind line"; cat "$out/check"; exit 1; }
  unparsed=$(lognormalizer -r "bench/lognorm/$kind.rb" -e raw -P < "$file" | wc -l)
  [ "$unparsed" -eq 0 ] || { echo "lognormalizer left $unparsed $kind lines unparsed"; exit 1; }
}
