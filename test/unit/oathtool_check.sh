#!/usr/bin/env bash
# Checks verifyd's TOTP codes (core/totp.cc) against oathtool's (Debian package oathtool, an
# independent implementation of RFC 6238) for several secrets, algorithms, code lengths,
# periods and times.
# Usage: oathtool_check.sh path/to/verifyd_totp_tool
set -euo pipefail

tool="${1:?usage: $0 path/to/verifyd_totp_tool}"
command -v oathtool >/dev/null || { echo "oathtool is not installed (apt-get install oathtool)" >&2; exit 1; }
[ -x "$tool" ] || { echo "$tool is not an executable" >&2; exit 1; }

secrets=(
  GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ  # RFC 6238's SHA1 key
  GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA  # its SHA256 key
  GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA  # its SHA512 key
  JBSWY3DPEHPK3PXP  # 10 bytes, the common example
  "$(head -c 20 /dev/urandom | base32 -w0 | tr -d '=')"  # what verifyd makes: 20 bytes
  "$(head -c 26 /dev/urandom | base32 -w0 | tr -d '=')"  # not a multiple of 5 bytes
  "$(head -c 64 /dev/urandom | base32 -w0 | tr -d '=')"
)
algs=(sha1 sha256 sha512)
digits=(6 7 8)
periods=(30 20 60 45)
times=(0 59 1111111109 1111111111 1234567890 2000000000 20000000000 "$(date +%s)"
       "$((RANDOM * 32768 + RANDOM))")

checked=0
failed=0
for secret in "${secrets[@]}"; do
  for alg in "${algs[@]}"; do
    for d in "${digits[@]}"; do
      for p in "${periods[@]}"; do
        for t in "${times[@]}"; do
          want=$(oathtool --totp="$alg" -b -d "$d" -s "$p" --now "@$t" "$secret")
          got=$("$tool" "$secret" "$alg" "$d" "$p" "$t")
          checked=$((checked + 1))
          if [ "$want" != "$got" ]; then
            failed=$((failed + 1))
            echo "MISMATCH secret=$secret alg=$alg digits=$d period=$p time=$t: oathtool $want, verifyd $got" >&2
          fi
        done
      done
    done
  done
done

# Base32 as people type it: lower case, in groups separated by spaces.
typed="gezd gnbv gy3t qojq gezd gnbv gy3t qojq"
want=$(oathtool --totp=sha1 -b -d 8 -s 30 --now "@59" "$typed")
got=$("$tool" "$typed" sha1 8 30 59)
checked=$((checked + 1))
if [ "$want" != "$got" ] || [ "$got" != 94287082 ]; then
  failed=$((failed + 1))
  echo "MISMATCH typed secret: oathtool $want, verifyd $got, RFC 6238 94287082" >&2
fi

echo "oathtool_check: $checked codes compared, $failed mismatches"
[ "$failed" -eq 0 ]
