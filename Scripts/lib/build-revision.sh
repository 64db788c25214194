# Sourced by Scripts/check-bit-identity.sh and Scripts/bench/compare_revisions.sh: a release `rnn` built at a git
# revision, in a cache both scripts share. Needs $repo (the repository) and $cache (the cache folder) set, and the
# functions now, since and short defined by the caller.
#
# build_revision REV TOOL -> sets $binary. $cache/<full commit id> is a `git clone --shared` of REV, built once (its
# .built stamp marks it); REV=WORKTREE copies the working tree into $cache/worktree over its kept .build, so the build
# is incremental. TOOL names the calling script in error messages; a failed build exits 2.
build_revision() {
    local rev=$1 tool=$2 dir t
    t=$(now)
    if [ "$rev" = WORKTREE ]; then
        dir="$cache/worktree"
        mkdir -p "$dir"
        # Replace the sources, keep .build: unchanged files keep their times (tar restores them).
        find "$dir" -mindepth 1 -maxdepth 1 ! -name .build ! -name build.log -exec rm -rf {} +
        (cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _ \
            | tar --null -T - -cf -) | tar -xf - -C "$dir"
        rm -f "$dir/.built"
    else
        dir="$cache/$rev"
        if [ ! -f "$dir/.built" ]; then
            rm -rf "$dir"
            git clone --quiet --shared --no-checkout "$repo" "$dir"
            git -C "$dir" -c advice.detachedHead=false checkout --quiet --detach "$rev"
        fi
    fi
    if [ -f "$dir/.built" ]; then
        echo "build $(short "$rev"): cached ($dir)"
    else
        if ! (cd "$dir" && env -u RK_BUILD_DOCS swift build -c release --product rnn >"$dir/build.log" 2>&1); then
            tail -n 30 "$dir/build.log" >&2
            echo "$tool: the build of $(short "$rev") failed (log: $dir/build.log)" >&2
            exit 2
        fi
        [ "$rev" = WORKTREE ] || touch "$dir/.built"
        echo "build $(short "$rev"): $(since "$t") s ($dir)"
    fi
    binary="$dir/.build/release/rnn"
    [ -x "$binary" ] || { echo "$tool: no rnn binary at $binary" >&2; exit 2; }
}
