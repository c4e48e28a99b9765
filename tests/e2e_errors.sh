#!/bin/sh
# End-to-end tests of what divsim does with bad input and faults: every error
# path of experiment files and the command line, databases that cannot be used
# (foreign, newer, read-only, locked, full, damaged, older), and a sweep in
# which a run diverges. Each must give a clear message and the documented exit
# code (2 input error, 1 fault or failed run) and leave existing data as it was.
# Set DIVSIM to the binary under test. As root, the read-only cases run a copy
# of divsim as user nobody (setpriv); where that is impossible they are skipped.
set -u
DIVSIM=${DIVSIM:-./divsim}
case $DIVSIM in /*) ;; *) DIVSIM=$(pwd)/$DIVSIM ;; esac
tmp=$(mktemp -d)
chmod 755 "$tmp" # the read-only cases run as another user
lock_pid=
trap '[ -n "$lock_pid" ] && kill "$lock_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0
failed=0
skipped=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
    what=$1; shift
    if "$@"; then ok; else bad "$what"; fi
}
# expect CODE PATTERN DESCRIPTION COMMAND...: the command exits CODE and its
# standard error matches the extended regular expression PATTERN.
expect() {
    want=$1 pattern=$2 what=$3; shift 3
    "$@" > "$tmp/out.txt" 2> "$tmp/err.txt"
    got=$?
    if [ "$got" -eq "$want" ] && grep -Eq -- "$pattern" "$tmp/err.txt"; then
        ok
    else
        bad "$what: exit $got (wanted $want), stderr: $(head -c 400 "$tmp/err.txt")"
    fi
}
query() { sqlite3 -batch -noheader "$1" "$2"; }
exact() { sqlite3 -batch -noheader -cmd ".mode quote" "$1" "$2"; }
# Every row of the tables a run writes, without wall-clock columns.
rows() {
    exact "$1" "SELECT id, experiment, agent, env, seed, status, message, config, config_hash, sim_hours, steps FROM runs ORDER BY id; SELECT * FROM params ORDER BY run_id, key; SELECT * FROM episodes ORDER BY run_id, episode; SELECT * FROM windows ORDER BY run_id, phase, window; SELECT * FROM phases ORDER BY run_id, phase"
}
# As another user when root, so that file permissions apply.
as_user() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
    else
        "$@"
    fi
}
# The other user may not reach this checkout: give it copies in $tmp.
mkdir "$tmp/bin"
cp "$DIVSIM" "$tmp/bin/divsim"
cp tests/fixtures/tiny.ini "$tmp/bin/tiny.ini"
chmod 755 "$tmp/bin" "$tmp/bin/divsim"
chmod 644 "$tmp/bin/tiny.ini"
USER_DIVSIM=$tmp/bin/divsim
USER_TINY=$tmp/bin/tiny.ini
can_drop=0
if as_user "$USER_DIVSIM" --version > /dev/null 2>&1; then can_drop=1; fi
# A sanitized build reserves terabytes of address space: ulimit -v cannot apply.
sanitized=0
if "$DIVSIM" --version | grep -q sanitize; then sanitized=1; fi

TINY=tests/fixtures/tiny.ini
quick="--set agent.kind=random --set experiment.seeds=1"

# Writes an experiment file $tmp/NAME from standard input.
ini() { cat > "$tmp/$1"; }
BASE='[env]
kind = shop
items = 50
users = 40

[agent]
kind = random'

# --- experiment files: exit 2, FILE:LINE, the key, and no database created
bad_file() { # NAME PATTERN: running $tmp/NAME fails as an input error
    expect 2 "$2" "$1" "$DIVSIM" run "$tmp/$1" -o "$tmp/never.db" -q
    check "$1 creates no database" test ! -e "$tmp/never.db"
    rm -f "$tmp/never.db"
}
printf '%s\n[rewrd]\nkind = clicks\n' "$BASE" | ini section.ini
bad_file section.ini "section.ini:8: unknown section 'rewrd' \(did you mean 'reward'\?\)"
printf '[env]\nkind = shop\nitmes = 50\n[agent]\nkind = random\n' | ini key.ini
bad_file key.ini "key.ini:3: unknown key 'itmes' in \[env\] \(did you mean 'items'\?\)"
printf '[env]\nkind = shpo\n[agent]\nkind = random\n' | ini env.ini
bad_file env.ini "env.ini:2: unknown env 'shpo' \(did you mean 'shop'\?\)"
printf '[env]\nkind = shop\nitems = ten\n[agent]\nkind = random\n' | ini type.ini
bad_file type.ini "type.ini:3: 'items': expected an integer, got 'ten'"
printf '[env]\nkind = shop\nitems = 2.5\n[agent]\nkind = random\n' | ini int.ini
bad_file int.ini "int.ini:3: 'items': expected an integer, got '2.5'"
printf '[env]\nkind = shop\nslate = 0\n[agent]\nkind = random\n' | ini range.ini
bad_file range.ini "range.ini:3: 'slate': value 0 out of range"
printf '%s\n[reward]\ndiversity_bonus = nan\n' "$BASE" | ini nan.ini
bad_file nan.ini "nan.ini:9: 'diversity_bonus': expected a finite number, got 'nan'"
printf '%s\n[reward]\ndiversity_bonus = 0, -inf\n' "$BASE" | ini inf.ini
bad_file inf.ini "inf.ini:9: 'diversity_bonus': expected a finite number, got '-inf'"
printf '[env]\nkind = shop\nitems = inf\n[agent]\nkind = random\n' | ini intinf.ini
bad_file intinf.ini "intinf.ini:3: 'items': expected an integer, got 'inf'"
printf '[env]\nkind = shop\nitems = 50\nusers = 40\nitems = 60\n[agent]\nkind = random\n' | ini dup.ini
bad_file dup.ini "dup.ini:5: duplicate key 'items' in \[env\] \(first set on line 3\)"
printf '[experiment]\nseeds =\n%s\n' "$BASE" | ini empty.ini
bad_file empty.ini "empty.ini:2: 'seeds': empty sweep \(no value given\)"
printf '%s\n[agent.mmr]\nlambda = 0.5,,0.7\n' "$BASE" | ini hole.ini
bad_file hole.ini "hole.ini:9: 'lambda': empty element in the list"
printf '[experiment]\nseeds = 1-100001\n%s\n' "$BASE" | ini grid.ini
bad_file grid.ini "grid.ini: the grid has 100001 runs, more than the limit of 100000"
printf '[experiment]\nseeds = 1-1000\n[env]\nkind = shop\nitems = 10,20,30,40,50,60,70,80,90,100\nusers = 10,20,30,40,50,60,70,80,90,100,110\n[agent]\nkind = random\n' | ini grid2.ini
bad_file grid2.ini "grid2.ini: the grid has 110000 runs, more than the limit of 100000"
printf '[experiment]\ntrain_episodes = 1000000000\n%s\n' "$BASE" | ini memory.ini
bad_file memory.ini "memory.ini:2: a run would need about [0-9.]+ GiB .*the limit is [0-9.]+ GiB"
printf '[env]\nkind = shop\nusers = 10000000\nitems = 10000000\ndim = 256\n[agent]\nkind = random\n' | ini envmem.ini
bad_file envmem.ini "envmem.ini:1: \[env\] shop would need about [0-9.]+ GiB"
printf '[env]\nkind = shop\nitems = 10000000\nusers = 100\n[agent]\nkind = reinforce\n[agent.reinforce]\nembed_dim = 1024\n' | ini agentmem.ini
bad_file agentmem.ini "agentmem.ini:7: a run would need about [0-9.]+ GiB: 64[0-9]\.[0-9] GiB for agent 'reinforce', [0-9.]+ GiB for env 'shop' \(10000000 items, 100 users\).*the limit is [0-9.]+ GiB"
if [ $sanitized = 0 ]; then # the limit comes from ulimit -v: about 1.9 GiB here
    printf '[experiment]\ntrain_episodes = 40000000\n%s\n' "$BASE" | ini ulimit.ini
    expect 2 "ulimit.ini:2: a run would need about [0-9.]+ GiB .*the limit is 1.9 GiB \(the address-space limit, ulimit -v\)" \
        "the memory limit follows ulimit -v" env OPENBLAS_NUM_THREADS=1 \
        sh -c "ulimit -v 2000000; exec \"$DIVSIM\" run \"$tmp/ulimit.ini\" --dry-run"
else
    skipped=$((skipped + 1))
fi
printf '[env]\nkind = shop\nitems = 5\377\n[agent]\nkind = random\n' | ini utf8.ini
bad_file utf8.ini "utf8.ini:3: invalid UTF-8 \(byte 0xff at column 10\)"
printf '[env]\nkind = shop\n; caf\303\n[agent]\nkind = random\n' | ini utf8b.ini
bad_file utf8b.ini "utf8b.ini:3: invalid UTF-8 \(byte 0xc3 at column 6\)"
printf '[env]\nkind = shop\nitems = 5\000\n[agent]\nkind = random\n' | ini nul.ini
bad_file nul.ini "nul.ini:3: NUL byte at column 10"
printf '[env]\nkind = shop\nitems = 5\033[1m\n[agent]\nkind = random\n' | ini control.ini
bad_file control.ini "control.ini:3: control character 0x1b at column 10"
printf '[env]\nkind = shop\nthis line is no key\n[agent]\nkind = random\n' | ini syntax.ini
bad_file syntax.ini "syntax.ini:3: syntax error"
printf 'items = 5\n%s\n' "$BASE" | ini outside.ini
bad_file outside.ini "outside.ini:1: key 'items' is outside any section"
printf '[env]\nkind = shop\n; %0300d\n[agent]\nkind = random\n' 0 | ini long.ini
bad_file long.ini "long.ini:3: line longer than 198 characters"
printf '[env]\nkind = shop\n' | ini noagent.ini
bad_file noagent.ini "noagent.ini: missing section \[agent\]"
head -c 3000 "$DIVSIM" > "$tmp/binary.ini"
bad_file binary.ini "binary.ini:[0-9]+: (NUL byte|invalid UTF-8|control character)"
expect 2 "cannot read '.*missing.ini': No such file or directory" "a missing file" \
    "$DIVSIM" run "$tmp/missing.ini" -q
expect 2 "'.*' is a directory, not an experiment file" "a directory as the file" \
    "$DIVSIM" run "$tmp" -q
if [ $can_drop = 1 ]; then
    printf '%s\n' "$BASE" | ini secret.ini
    chmod 600 "$tmp/secret.ini"
    expect 2 "cannot read '.*secret.ini': Permission denied" "an unreadable file" \
        as_user "$USER_DIVSIM" run "$tmp/secret.ini" --dry-run
else
    skipped=$((skipped + 1))
fi

# --- the command line: exit 2 and what is wrong
expect 2 "unknown command 'runn'" "unknown command" "$DIVSIM" runn
expect 2 "missing command" "no command" "$DIVSIM"
expect 2 "run: missing experiment FILE" "run without a file" "$DIVSIM" run
expect 2 "run: more than one experiment file" "two files" "$DIVSIM" run $TINY $TINY
expect 2 "run: unknown or incomplete option '--frobnicate'" "unknown option" \
    "$DIVSIM" run $TINY --frobnicate
expect 2 "run: unknown or incomplete option '-o'" "-o without a value" "$DIVSIM" run $TINY -o
expect 2 "run: unknown or incomplete option '--set'" "--set without a value" \
    "$DIVSIM" run $TINY --set
expect 2 "-j needs a number of workers, got '0'" "-j 0" "$DIVSIM" run $TINY -j 0
expect 2 "-j needs a number of workers, got 'two'" "-j two" "$DIVSIM" run $TINY -j two
expect 2 "-j needs a number of workers, got '-3'" "-j -3" "$DIVSIM" run $TINY -j -3
expect 2 "--shard needs K/N with 1 <= K <= N, got '3/2'" "--shard 3/2" \
    "$DIVSIM" run $TINY --shard 3/2
expect 2 "--shard needs K/N with 1 <= K <= N, got '0/2'" "--shard 0/2" \
    "$DIVSIM" run $TINY --shard 0/2
expect 2 "--shard needs K/N with 1 <= K <= N, got 'half'" "--shard half" \
    "$DIVSIM" run $TINY --shard half
expect 2 "--set 'items=5': expected section.key=value" "--set without a section" \
    "$DIVSIM" run $TINY --set items=5 --dry-run
expect 2 "--set 'env.items': expected section.key=value" "--set without a value" \
    "$DIVSIM" run $TINY --set env.items --dry-run
expect 2 "--set 'evn.items=5': unknown section 'evn' \(did you mean 'env'\?\)" \
    "--set unknown section" "$DIVSIM" run $TINY --set evn.items=5 --dry-run
expect 2 "--set 'env.items=-1': 'items': value -1 out of range" "--set out of range" \
    "$DIVSIM" run $TINY --set env.items=-1 --dry-run
expect 2 "--set 'reward.diversity_bonus=inf': 'diversity_bonus': expected a finite number" \
    "--set inf" "$DIVSIM" run $TINY --set reward.diversity_bonus=inf --dry-run
expect 2 "--set number 2: invalid UTF-8 \(byte 0xe9 at column 11\)" "--set bad UTF-8" \
    "$DIVSIM" run $TINY --set env.items=5 --set "$(printf 'env.users=\351')" --dry-run
expect 2 "cannot list 'agent'" "list of nothing" "$DIVSIM" list agent
expect 2 "status: '.*none.db' is not a file" "status of a missing db" \
    "$DIVSIM" status "$tmp/none.db"
expect 2 "status: '.*' is not a file" "status of a directory" "$DIVSIM" status "$tmp"
expect 2 "." "compare of a missing db" "$DIVSIM" compare "$tmp/none.db"
expect 2 "." "export of a missing db" "$DIVSIM" export "$tmp/none.db" --table runs
expect 2 "merge: expected OUT.db and at least one IN.db" "merge without inputs" \
    "$DIVSIM" merge "$tmp/m.db"
expect 2 "cannot read '.*none.db': not a file" "merge of a missing input" \
    "$DIVSIM" merge "$tmp/m.db" "$tmp/none.db"

# --- databases: a clear refusal, exit 2, and the file as it was
"$DIVSIM" run $TINY -o "$tmp/good.db" -q $quick
check "the reference database is written" test "$(query "$tmp/good.db" "SELECT COUNT(*) FROM runs WHERE status = 'done'")" = 1
bad_db() { # FILE PATTERN WHAT: running into FILE is refused and leaves it byte for byte
    cp "$1" "$tmp/before.bin"
    expect 2 "$2" "$3" "$DIVSIM" run $TINY -o "$1" -q $quick
    check "$3: the file is unchanged" cmp -s "$1" "$tmp/before.bin"
}
sqlite3 "$tmp/foreign.db" "CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES ('mine')"
bad_db "$tmp/foreign.db" "database '.*foreign.db' is not a divsim results database" "a foreign database"
printf 'just some text, not a database at all\n' > "$tmp/text.db"
bad_db "$tmp/text.db" "'.*text.db' is not an sqlite database" "a text file as database"
cp "$tmp/good.db" "$tmp/newer.db"
sqlite3 "$tmp/newer.db" "PRAGMA user_version = 9"
bad_db "$tmp/newer.db" "has schema version 9, newer than this divsim \(3\); upgrade divsim" "a newer schema"
expect 2 "database '.*' cannot be written: it is a directory" "a directory as database" \
    "$DIVSIM" run $TINY -o "$tmp" -q $quick
expect 2 "cannot be written: there is no directory '.*nowhere'" "a database in no directory" \
    "$DIVSIM" run $TINY -o "$tmp/nowhere/x.db" -q $quick
check "no directory is created" test ! -e "$tmp/nowhere"

# Damaged: a page in the middle overwritten, or the file cut short.
cp "$tmp/good.db" "$tmp/damaged.db"
page=$(query "$tmp/damaged.db" "SELECT rootpage FROM sqlite_master WHERE name = 'episodes'")
size=$(query "$tmp/damaged.db" "PRAGMA page_size")
head -c "$size" "$DIVSIM" | dd of="$tmp/damaged.db" bs="$size" seek=$((page - 1)) conv=notrunc 2>/dev/null
bad_db "$tmp/damaged.db" "database '.*damaged.db' is damaged .*PRAGMA integrity_check" "a damaged page"
pages=$(query "$tmp/good.db" "PRAGMA page_count")
dd if="$tmp/good.db" of="$tmp/cut.db" bs="$size" count=$((pages / 2)) 2>/dev/null
bad_db "$tmp/cut.db" "damaged" "a file cut short"
cp "$tmp/good.db" "$tmp/m.db"
expect 2 "'.*damaged.db' is damaged" "merge of a damaged input" \
    "$DIVSIM" merge "$tmp/m.db" "$tmp/damaged.db"
check "a refused merge leaves its output" test "$(rows "$tmp/m.db")" = "$(rows "$tmp/good.db")"
cp "$tmp/damaged.db" "$tmp/before.bin"
expect 2 "database '.*damaged.db' is damaged" "merge into a damaged output" \
    "$DIVSIM" merge "$tmp/damaged.db" "$tmp/good.db"
check "merge into a damaged output: unchanged" cmp -s "$tmp/damaged.db" "$tmp/before.bin"

# Read-only: the file, its directory, or a new file in a read-only directory.
if [ $can_drop = 1 ]; then
    mkdir "$tmp/ro"
    cp "$tmp/good.db" "$tmp/ro/a.db"
    chmod 644 "$tmp/ro/a.db"
    chmod 555 "$tmp/ro"
    cp "$tmp/ro/a.db" "$tmp/before.bin"
    expect 2 "database '.*a.db' cannot be written: the file is read-only" "a read-only database" \
        as_user "$USER_DIVSIM" run "$USER_TINY" -o "$tmp/ro/a.db" -q $quick
    check "a read-only database is unchanged" cmp -s "$tmp/ro/a.db" "$tmp/before.bin"
    chmod 666 "$tmp/ro/a.db"
    expect 2 "cannot be written: its directory '.*ro' is not writable" "a read-only directory" \
        as_user "$USER_DIVSIM" run "$USER_TINY" -o "$tmp/ro/a.db" -q $quick
    check "a database in a read-only directory is unchanged" cmp -s "$tmp/ro/a.db" "$tmp/before.bin"
    check "no -wal file appears" test ! -e "$tmp/ro/a.db-wal"
    expect 2 "cannot be written: its directory '.*ro' is not writable" "a new database in a read-only directory" \
        as_user "$USER_DIVSIM" run "$USER_TINY" -o "$tmp/ro/new.db" -q $quick
    check "no new database appears" test ! -e "$tmp/ro/new.db"
    # Reading needs no write: with no -wal file, the database file is whole.
    sqlite3 "$tmp/ro-v1.db" < tests/fixtures/store_v1.sql
    chmod 755 "$tmp/ro"
    cp "$tmp/ro-v1.db" "$tmp/ro/v1.db"
    chmod 644 "$tmp/ro/v1.db"
    chmod 555 "$tmp/ro"
    as_user "$USER_DIVSIM" status "$tmp/ro/a.db" > "$tmp/out.txt"
    check "status in a read-only directory: exit 0" test $? -eq 0
    check "status in a read-only directory counts the run" grep -Eq '^  tiny +1 +1 +0 +0 +0 +0 +0$' "$tmp/out.txt"
    as_user "$USER_DIVSIM" status "$tmp/ro/v1.db" > "$tmp/out.txt"
    check "status of version 1 in a read-only directory: exit 0" test $? -eq 0
    check "status of version 1, read-only: both runs" grep -Eq '^  legacy +2 +2 +0 +0 +0 +0 +0$' "$tmp/out.txt"
    as_user "$USER_DIVSIM" compare "$tmp/ro/a.db" > "$tmp/out.txt"
    check "compare in a read-only directory: exit 0" test $? -eq 0
    as_user "$USER_DIVSIM" export "$tmp/ro/a.db" --table runs > "$tmp/out.txt"
    check "export in a read-only directory: exit 0" test $? -eq 0
    check "the readers leave the read-only directory as it was" test "$(ls "$tmp/ro" | tr '\n' ' ')" = "a.db v1.db "
    # A -wal file cannot be read without a -shm file, which cannot be made there.
    chmod 755 "$tmp/ro"
    printf 'PRAGMA journal_mode = WAL;\nPRAGMA wal_autocheckpoint = 0;\nUPDATE runs SET message = NULL;\n.shell cp %s %s\n' \
        "$tmp/ro/a.db-wal" "$tmp/wal.bin" | sqlite3 "$tmp/ro/a.db" > /dev/null
    cp "$tmp/wal.bin" "$tmp/ro/a.db-wal"
    chmod 644 "$tmp/ro/a.db-wal"
    chmod 555 "$tmp/ro"
    for command in status compare "export --table runs"; do
        expect 2 "cannot read '.*ro/a.db': its directory '.*ro' is not writable, and SQLite must create the -shm file there to read the -wal file" \
            "$command of a database with a -wal file in a read-only directory" \
            as_user "$USER_DIVSIM" $command "$tmp/ro/a.db"
    done
    chmod 755 "$tmp/ro"
else
    skipped=$((skipped + 17))
fi

# Locked by another process: divsim waits 10 s, then says so (exit 1).
cp "$tmp/good.db" "$tmp/locked.db"
rows "$tmp/locked.db" > "$tmp/locked-before.txt"
mkfifo "$tmp/lock.fifo"
sqlite3 "$tmp/locked.db" < "$tmp/lock.fifo" > /dev/null &
lock_pid=$!
exec 3> "$tmp/lock.fifo"
echo "BEGIN EXCLUSIVE; DELETE FROM planned WHERE 0;" >&3
sleep 1
start=$(date +%s)
expect 1 "database '.*locked.db': .*database is locked \(another process kept it locked for more than 10 s\)" \
    "a locked database" "$DIVSIM" run $TINY -o "$tmp/locked.db" -q
waited=$(( $(date +%s) - start ))
check "the lock was waited for, about 10 s (waited ${waited} s)" test "$waited" -ge 9 -a "$waited" -le 30
echo "ROLLBACK;" >&3
exec 3>&-
wait "$lock_pid"
lock_pid=
check "a locked database keeps its rows" test "$(rows "$tmp/locked.db")" = "$(cat "$tmp/locked-before.txt")"
check "a locked database: integrity" test "$(query "$tmp/locked.db" "PRAGMA integrity_check")" = ok

# Out of space (the file size limit stands for a full disk): the sweep stops
# with exit 1 and says why; finished runs stay whole; resuming finishes it.
# Each of the six runs writes about 0.5 MB: a 1.2 MB limit stops the sweep
# after a run or two.
grow="--set experiment.train_episodes=3000 --set experiment.seeds=1-2"
"$DIVSIM" run $TINY -o "$tmp/ref-full.db" -q $grow
cp "$tmp/good.db" "$tmp/full.db"
old_id=$(query "$tmp/good.db" "SELECT id FROM runs")
old_rows=$(exact "$tmp/good.db" "SELECT * FROM episodes ORDER BY episode")
expect 1 "database '.*full.db': .*\(a file reached the file size limit, ulimit -f; the finished runs are kept\)" \
    "a full disk" sh -c "ulimit -f 2400; exec \"$DIVSIM\" run $TINY -o \"$tmp/full.db\" -q $grow"
check "a full disk: integrity" test "$(query "$tmp/full.db" "PRAGMA integrity_check")" = ok
check "a full disk: the earlier run is untouched" test "$(exact "$tmp/full.db" "SELECT * FROM episodes WHERE run_id = $old_id ORDER BY episode")" = "$old_rows"
check "a full disk: every finished run is whole" test "$(query "$tmp/full.db" "SELECT COUNT(*) FROM runs r WHERE id <> $old_id AND status = 'done' AND (SELECT COUNT(*) FROM episodes e WHERE e.run_id = r.id) <> 3080")" = 0
check "a full disk: the sweep was cut short" test "$(query "$tmp/full.db" "SELECT COUNT(*) FROM runs WHERE status = 'done'")" -lt 7
"$DIVSIM" run $TINY -o "$tmp/full.db" -q $grow
query "$tmp/full.db" "PRAGMA foreign_keys = ON; DELETE FROM runs WHERE id = $old_id"
check "a full disk, resumed: the rows of an uninterrupted sweep" test "$(rows "$tmp/full.db")" = "$(rows "$tmp/ref-full.db")"

# Older schemas: upgraded in place, every row kept; merge takes them too.
for fixture in store_v1 store_v2_early; do
    sqlite3 "$tmp/$fixture.db" < "tests/fixtures/$fixture.sql"
    cp "$tmp/$fixture.db" "$tmp/$fixture-copy.db"
    old=$(rows "$tmp/$fixture.db")
    # The readers take it as it is: status (no planned table in version 1)...
    check "$fixture: status reads it" sh -c "\"$DIVSIM\" status \"$tmp/$fixture.db\" | grep -Eq '^  legacy +2 +2 +0 +0 +0 +0 +0$'"
    check "$fixture: compare reads it" sh -c "\"$DIVSIM\" compare \"$tmp/$fixture.db\" | grep -Eq '^shop +popularity +1 '"
    check "$fixture: the readers leave it as it was" cmp -s "$tmp/$fixture.db" "$tmp/$fixture-copy.db"
    "$DIVSIM" run $TINY -o "$tmp/$fixture.db" -q $quick
    check "$fixture: a run into it exits 0" test $? -eq 0
    check "$fixture: upgraded to version 3" test "$(query "$tmp/$fixture.db" "PRAGMA user_version")" = 3
    check "$fixture: gained the interactions table" test "$(query "$tmp/$fixture.db" "SELECT COUNT(*) FROM interactions")" = 0
    check "$fixture: its runs are kept" test "$(rows "$tmp/$fixture.db" | grep -c legacy)" = "$(printf '%s\n' "$old" | grep -c legacy)"
    check "$fixture: its episodes are kept" test "$(exact "$tmp/$fixture.db" "SELECT e.* FROM episodes e JOIN runs r ON r.id = e.run_id WHERE r.experiment = 'legacy' ORDER BY 1, 2")" = "$(exact "$tmp/$fixture-copy.db" "SELECT * FROM episodes ORDER BY 1, 2")"
    "$DIVSIM" merge "$tmp/merged-$fixture.db" "$tmp/$fixture-copy.db" 2>/dev/null
    check "$fixture: merges into a new database" test "$(query "$tmp/merged-$fixture.db" "SELECT COUNT(*) FROM updates")" = 2
done

# --- numerical faults: a run with a huge learning rate diverges, the others finish
ini diverge.ini <<'EOF'
[experiment]
name = diverge
seeds = 1-2
train_episodes = 300
eval_episodes = 50
window = 50

[env]
kind = bandit
items = 10
slate = 3

[agent]
kind = a2c, random

[agent.a2c]
learning_rate = 0.001, 1e300

[reward]
kind = clicks
EOF
"$DIVSIM" run "$tmp/diverge.ini" -o "$tmp/diverge.db" -j 2 2> "$tmp/err.txt"
check "a diverged run is no failure: exit 0" test $? -eq 0
check "both runs with learning rate 1e300 diverged" test "$(query "$tmp/diverge.db" "SELECT COUNT(*) FROM runs r JOIN params p ON p.run_id = r.id AND p.key = 'agent.a2c.learning_rate' WHERE p.value = '1e+300' AND r.status = 'diverged'")" = 2
check "the diverged runs say why" test "$(query "$tmp/diverge.db" "SELECT COUNT(*) FROM runs WHERE status = 'diverged' AND message LIKE '%a2c%not finite%'")" = 2
check "the other runs finished" test "$(query "$tmp/diverge.db" "SELECT COUNT(*) FROM runs WHERE status = 'done'")" = 4
check "the summary counts them" grep -q "4 done, 0 skipped (already done or diverged), 0 failed, 2 diverged" "$tmp/err.txt"
check "status shows them" sh -c "\"$DIVSIM\" status \"$tmp/diverge.db\" | grep -Eq '^  diverge +6 +4 +0 +2 +0 +0 +0$'"
"$DIVSIM" run "$tmp/diverge.ini" -o "$tmp/diverge.db" 2> "$tmp/err.txt"
check "a resumed sweep does not redo diverged runs" grep -q ": 0 done, 6 skipped" "$tmp/err.txt"

echo "e2e_errors: $passed passed, $failed failed, $skipped skipped"
test "$failed" -eq 0
