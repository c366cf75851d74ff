# shellcheck shell=bash
# apt-mirror.sh — sourced by scripts that fetch Debian indexes with a private apt configuration;
# defines apt_mirror_uri, which finds the Debian mirror this machine's apt already uses.
# (The same lookup as scripts/install-deps' own copy.)

# apt_mirror_uri SUITE: prints the URI of the first enabled `deb` entry in apt's sources whose
# suites include SUITE exactly (so "bookworm" matches neither bookworm-security nor
# bookworm-updates): deb822 stanzas in /etc/apt/sources.list.d/*.sources first, then the
# one-line /etc/apt/sources.list and /etc/apt/sources.list.d/*.list. $PGMEMCTL_APT_URI, when set,
# wins. Fails (prints nothing) when there is no such entry.
apt_mirror_uri() {
  local suite=$1 f uri
  if [ -n "${PGMEMCTL_APT_URI:-}" ]; then printf '%s\n' "$PGMEMCTL_APT_URI"; return 0; fi
  for f in /etc/apt/sources.list.d/*.sources; do   # deb822 stanzas
    [ -f "$f" ] || continue
    uri=$(awk -v suite="$suite" '
      function reset() { is_deb = 0; has_suite = 0; enabled = 1; uri = "" }
      function flush() { if (is_deb && has_suite && enabled && uri != "") { print uri; found = 1; exit } reset() }
      BEGIN { reset() }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1) }
      key == "types:"   { for (i = 2; i <= NF; i++) if ($i == "deb") is_deb = 1 }
      key == "uris:"    { uri = $2 }
      key == "suites:"  { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
      key == "enabled:" { if (tolower($2) == "no") enabled = 0 }
      END { if (!found) flush() }' "$f")
    if [ -n "$uri" ]; then printf '%s\n' "$uri"; return 0; fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do   # one-line format
    [ -f "$f" ] || continue
    uri=$(awk -v suite="$suite" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$f")
    if [ -n "$uri" ]; then printf '%s\n' "$uri"; return 0; fi
  done
  return 1
}
