# ./dev lighthouse: Lighthouse's scores of the web UI's home, search and
# product pages on the stack ./dev up serves, each page three times in
# Debian's chromium, the median kept (doc/web-ui.md, "Lighthouse").
# Sourced by dev, which has started nothing: the up stack must be running.

lighthouse_install() {
	local dir=$DEV/lighthouse
	if [ -x "$dir/node_modules/.bin/lighthouse" ] &&
		[ ! "$TOP/bench/lighthouse/package-lock.json" -nt "$dir/package-lock.json" ]; then
		return 0
	fi
	say "npm ci (lighthouse)"
	mkdir -p "$dir"
	cp "$TOP/bench/lighthouse/package.json" "$TOP/bench/lighthouse/package-lock.json" "$dir/"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
		die "npm ci failed (lighthouse)"
}

# One page's scores: "performance accessibility best-practices", 0-100.
lighthouse_once() {
	local out=$DEV/lighthouse/last.json
	CHROME_PATH=/usr/bin/chromium timeout 180 "$DEV/lighthouse/node_modules/.bin/lighthouse" "$1" \
		--quiet --output=json --output-path="$out" \
		--only-categories=performance,accessibility,best-practices \
		--chrome-flags="--headless=new --no-sandbox --ignore-certificate-errors" >/dev/null 2>&1 ||
		die "lighthouse failed on $1"
	python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))["categories"]
print(*(round(c[k]["score"] * 100) for k in ("performance", "accessibility", "best-practices")))' "$out"
}

lighthouse_main() {
	local base url id name runs median
	base=$(cat "$STATE/url" 2>/dev/null) || die "no stack is up: ./dev up first"
	curl -ksf "$base/api/v1/health/live" >/dev/null || die "the up stack at $base does not answer"
	id=$(curl -ksf "$base/api/v1/products?limit=1" |
		python3 -c 'import json, sys; d = json.load(sys.stdin)["data"]; print(d[0]["id"] if d else "")')
	[ -n "$id" ] || die "the catalog is empty: ./dev ctl seed --products 100 first"
	lighthouse_install
	echo "| page | performance | accessibility | best practices |"
	echo "|---|---|---|---|"
	for name in home search product; do
		case $name in
		home) url=$base/ ;;
		search) url="$base/search?q=classic" ;;
		product) url=$base/products/$id ;;
		esac
		runs=$(for _ in 1 2 3; do lighthouse_once "$url"; done)
		median=$(printf '%s\n' "$runs" | python3 -c 'import sys
rows = [list(map(int, l.split())) for l in sys.stdin if l.strip()]
print(" | ".join(str(sorted(col)[len(col) // 2]) for col in zip(*rows)))')
		echo "| $name | $median |"
	done
}
