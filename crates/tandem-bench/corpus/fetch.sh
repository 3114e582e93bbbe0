#!/usr/bin/env bash
# Builds the corpus of the cross-file definition recall benchmark (`tandem-bench xdr`) from the
# pinned registry packages of manifest.txt (beside this script):
#
#   crates/tandem-bench/corpus/fetch.sh [--pin] DIR
#
# DIR/<language>/<package>-<version>/ is one repository: the package as published, keeping only
# the source files of that language (plus the package's manifest at its root: Cargo.toml,
# package.json, pyproject.toml, setup.py, go.mod), under their published paths. Generated
# declaration files (*.d.ts), minified files (*.min.js) and source maps are left out. The archives
# are kept in DIR/.archives and verified against the sha256 of the manifest; a repository that
# is already complete is skipped, so the script is idempotent and cheap to re-run.
#
# --pin fills in the sha256 of manifest lines that have "?" (a new package); it never changes a
# recorded one. Without --pin an unpinned or mismatching archive is an error.
#
# Needs: curl, tar, sha256sum, pip, npm, apt-get and dpkg-deb (Debian 12; `apt-get update` once).
# Nothing downloaded is meant to be committed: DIR should be outside the repository.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/manifest.txt"
pin=0
if [[ "${1:-}" == "--pin" ]]; then
    pin=1
    shift
fi
if [[ $# -ne 1 ]]; then
    echo "usage: $0 [--pin] DIR" >&2
    exit 2
fi
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
archives="$dir/.archives"
mkdir -p "$archives"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log() { echo "fetch.sh: $*" >&2; }

# The file-name patterns (find -name) kept for each language.
patterns() {
    case "$1" in
        rust) echo '*.rs' ;;
        python) echo '*.py' ;;
        javascript) echo '*.js *.mjs *.cjs *.jsx' ;;
        typescript) echo '*.ts *.tsx *.mts *.cts' ;;
        go) echo '*.go' ;;
        c) echo '*.c *.h' ;;
        cpp) echo '*.cc *.cpp *.cxx *.c++ *.hh *.hpp *.hxx *.h++ *.h *.ipp *.inl' ;;
        java) echo '*.java' ;;
        *) return 1 ;;
    esac
}

# Records the sha256 of a manifest line that had "?".
pin_sha() {
    local lang="$1" name="$2" version="$3" sha="$4" tmp
    tmp="$(mktemp)"
    awk -v l="$lang" -v n="$name" -v v="$version" -v s="$sha" '
        $1 == l && $3 == n && $4 == v && $5 == "?" && !/^#/ {
            printf "%-11s %-6s %-39s %-21s %s\n", $1, $2, $3, $4, s; next
        }
        { print }' "$manifest" >"$tmp"
    cat "$tmp" >"$manifest"
    rm -f "$tmp"
}

# Downloads one archive into $archives/$3 unless it is there.
download() {
    local kind="$1" name="$2" file="$3" version="$4" tmpd
    [[ -s "$archives/$file" ]] && return 0
    tmpd="$work/dl"
    rm -rf "$tmpd"
    mkdir -p "$tmpd"
    case "$kind" in
        crate)
            curl -sSfL --retry 3 -o "$tmpd/a" "https://static.crates.io/crates/$name/$name-$version.crate"
            ;;
        pypi)
            pip download --quiet --no-deps --no-binary "$name" "$name==$version" -d "$tmpd/out" >&2
            mv "$(find "$tmpd/out" -maxdepth 1 -type f | head -1)" "$tmpd/a"
            ;;
        npm)
            (cd "$tmpd" && npm pack --silent "$name@$version" >/dev/null)
            mv "$(find "$tmpd" -maxdepth 1 -name '*.tgz' | head -1)" "$tmpd/a"
            ;;
        deb)
            (cd "$tmpd" && apt-get download -q "$name=$version" >&2 2>/dev/null)
            mv "$(find "$tmpd" -maxdepth 1 -name '*.deb' | head -1)" "$tmpd/a"
            ;;
        *)
            log "unknown kind $kind"
            return 1
            ;;
    esac
    mv "$tmpd/a" "$archives/$file"
}

# Unpacks an archive into $work/x and prints the directory that is the package's root.
unpack() {
    local kind="$1" path="$2" x="$work/x"
    rm -rf "$x"
    mkdir -p "$x"
    case "$kind" in
        crate | npm) tar -xzf "$path" -C "$x" ;;
        pypi)
            case "$path" in
                *.zip) (cd "$x" && python3 -m zipfile -e "$path" .) ;;
                *) tar -xf "$path" -C "$x" ;;
            esac
            ;;
        deb)
            dpkg-deb -x "$path" "$x"
            echo "$x/usr/share/gocode/src"
            return 0
            ;;
    esac
    # crates, sdists and npm tarballs have one top directory.
    find "$x" -mindepth 1 -maxdepth 1 -type d | head -1
}

# The loop reads a copy: --pin rewrites the manifest meanwhile.
cp "$manifest" "$work/manifest"
failures=0
while read -r lang kind name version sha; do
    [[ -z "$lang" || "$lang" == \#* ]] && continue
    slug="${name#@}"
    slug="${slug//\//-}"
    dest="$dir/$lang/$slug-$version"
    if [[ -f "$dest/.tandem-corpus-complete" ]]; then
        continue
    fi
    case "$kind" in
        crate) file="crate-$slug-$version.crate" ;;
        pypi) file="pypi-$slug-$version.sdist" ;;
        npm) file="npm-$slug-$version.tgz" ;;
        deb) file="deb-$slug-$version.deb" ;;
        *) log "$name: unknown kind $kind"; failures=$((failures + 1)); continue ;;
    esac
    log "$lang/$slug-$version ($kind)"
    if ! download "$kind" "$name" "$file" "$version"; then
        log "$name $version: download failed"
        failures=$((failures + 1))
        continue
    fi
    got="$(sha256sum "$archives/$file" | cut -d' ' -f1)"
    if [[ "$sha" == "?" ]]; then
        if [[ $pin -eq 1 ]]; then
            pin_sha "$lang" "$name" "$version" "$got"
            log "$name $version: pinned sha256 $got"
        else
            log "$name $version: no sha256 in the manifest (run with --pin to record $got)"
            failures=$((failures + 1))
            continue
        fi
    elif [[ "$got" != "$sha" ]]; then
        log "$name $version: sha256 mismatch: manifest $sha, archive $got"
        failures=$((failures + 1))
        continue
    fi
    # pypi archives are .tar.gz or .zip: tell unpack which.
    path="$archives/$file"
    if [[ "$kind" == pypi ]] && head -c 2 "$path" | grep -q 'PK'; then
        cp "$path" "$work/sdist.zip"
        path="$work/sdist.zip"
    fi
    root="$(unpack "$kind" "$path")"
    if [[ -z "$root" || ! -d "$root" ]]; then
        log "$name $version: unexpected archive layout"
        failures=$((failures + 1))
        continue
    fi
    rm -rf "$dest"
    mkdir -p "$dest"
    args=()
    read -r -a pats <<<"$(patterns "$lang")"
    for p in "${pats[@]}"; do
        args+=(-o -name "$p")
    done
    (
        cd "$root"
        find . -type f \( "${args[@]:1}" \) \
            ! -name '*.d.ts' ! -name '*.d.mts' ! -name '*.d.cts' ! -name '*.min.js' -print0 |
            xargs -0 -r cp --parents -t "$dest"
        for m in Cargo.toml package.json pyproject.toml setup.py go.mod; do
            if [[ -f "$m" ]]; then cp "$m" "$dest/"; fi
        done
    )
    echo "$lang $kind $name $version $got" >"$dest/.tandem-corpus-complete"
done <"$work/manifest"

# Summary: repositories, files and bytes per language (the completion markers not counted).
printf '%-11s %6s %7s %11s\n' language repos files bytes >&2
for l in "$dir"/*/; do
    l="${l%/}"
    lang="${l##*/}"
    repos="$(find "$l" -mindepth 1 -maxdepth 1 -type d | wc -l)"
    files="$(find "$l" -type f ! -name .tandem-corpus-complete | wc -l)"
    bytes="$(find "$l" -type f ! -name .tandem-corpus-complete -printf '%s\n' | awk '{s += $1} END {print s + 0}')"
    printf '%-11s %6s %7s %11s\n' "$lang" "$repos" "$files" "$bytes" >&2
done
if [[ $failures -gt 0 ]]; then
    log "$failures package(s) failed"
    exit 1
fi
