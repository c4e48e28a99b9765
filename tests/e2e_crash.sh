#!/bin/sh
# The crash test: a sweep is killed with SIGKILL at 20 points drawn from a
# seeded generator (so a failure can be replayed), alternately with one and two
# workers, and resumed with the same command after each kill. After every kill
# the database must pass PRAGMA integrity_check and hold only whole runs; once
# the sweep is complete it must equal, column for column except wall-clock
# ones, what an uninterrupted sweep writes (on a fast machine the sweep may be
# completed before the 20 kills are spent: it then starts over in a new
# database). Set DIVSIM to the binary under test, CRASH_SEED and CRASH_KILLS to
# draw other or more kill points.
set -u
DIVSIM=${DIVSIM:-./divsim}
SEED=${CRASH_SEED:-20261128}
KILLS=${CRASH_KILLS:-20}
FIXTURE=tests/fixtures/crash.ini
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
    what=$1; shift
    if "$@"; then ok; else bad "$what"; fi
}
query() { sqlite3 -batch -noheader "$1" "$2"; }
# Every table a sweep writes, reals exactly, without the wall-clock columns
# (runs: started_at, finished_at, wall_seconds, host, build; updates:
# steps_per_second).
rows() {
    sqlite3 -batch -noheader -cmd ".mode quote" "$1" "
        SELECT id, experiment, agent, env, seed, status, message, config, config_hash,
               version, sim_hours, steps FROM runs ORDER BY id;
        SELECT * FROM params ORDER BY run_id, key;
        SELECT * FROM episodes ORDER BY run_id, episode;
        SELECT * FROM windows ORDER BY run_id, phase, window;
        SELECT * FROM phases ORDER BY run_id, phase;
        SELECT run_id, \"update\", time, policy_loss, value_loss, entropy, approx_kl,
               clip_fraction, explained_variance, grad_norm, learning_rate
        FROM updates ORDER BY run_id, \"update\";
        SELECT * FROM planned ORDER BY run_id"
}
# Runs marked done whose rows differ in number from the reference's.
partial_runs() {
    query "$1" "ATTACH '$tmp/ref.db' AS ref;
        SELECT COUNT(*) FROM runs r WHERE r.status = 'done' AND (
            (SELECT COUNT(*) FROM episodes e WHERE e.run_id = r.id) <>
            (SELECT COUNT(*) FROM ref.episodes e WHERE e.run_id = r.id) OR
            (SELECT COUNT(*) FROM windows w WHERE w.run_id = r.id) <>
            (SELECT COUNT(*) FROM ref.windows w WHERE w.run_id = r.id) OR
            (SELECT COUNT(*) FROM updates u WHERE u.run_id = r.id) <>
            (SELECT COUNT(*) FROM ref.updates u WHERE u.run_id = r.id))"
}
# A linear congruential generator (glibc's constants): state in [0, 2^31).
state=$SEED
next() { state=$(( (state * 1103515245 + 12345) % 2147483648 )); }

"$DIVSIM" run $FIXTURE -o "$tmp/ref.db" -q
check "the uninterrupted sweep exits 0" test $? -eq 0
rows "$tmp/ref.db" > "$tmp/ref.txt"
check "the uninterrupted sweep did its 12 runs" test "$(query "$tmp/ref.db" "SELECT COUNT(*) FROM runs WHERE status = 'done'")" = 12

killed=0   # kills that found the sweep still going
caught=0   # ...and left a run in flight (status running)
rounds=0   # sweeps completed through kills and resumes
i=1
while [ $i -le "$KILLS" ]; do
    next; ms=$(( 50 + (state / 65536) % 950 ))
    next; jobs=$(( 1 + (state / 65536) % 2 ))
    "$DIVSIM" run $FIXTURE -o "$tmp/k.db" -q -j $jobs &
    pid=$!
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    code=$?
    sleep 0.1 # workers die with their parent (PR_SET_PDEATHSIG)
    [ $code -eq 137 ] && killed=$((killed + 1))
    running=$(query "$tmp/k.db" "SELECT COUNT(*) FROM runs WHERE status = 'running'" 2>/dev/null)
    [ "${running:-0}" -gt 0 ] && caught=$((caught + 1))
    done_runs=$(query "$tmp/k.db" "SELECT COUNT(*) FROM runs WHERE status = 'done'" 2>/dev/null)
    echo "kill $i after ${ms} ms with -j $jobs: exit $code, ${done_runs:-0} runs done, ${running:-0} in flight" >> "$tmp/kills.txt"
    if [ -e "$tmp/k.db" ]; then
        check "kill $i: integrity" test "$(query "$tmp/k.db" "PRAGMA integrity_check")" = ok
        check "kill $i: every run marked done is whole" test "$(partial_runs "$tmp/k.db")" = 0
    fi
    if [ "${done_runs:-0}" -eq 12 ]; then
        rounds=$((rounds + 1))
        rows "$tmp/k.db" > "$tmp/k.txt"
        check "round $rounds, completed through kills: the database of an uninterrupted sweep" \
            cmp -s "$tmp/ref.txt" "$tmp/k.txt"
        rm -f "$tmp/k.db" "$tmp/k.db-wal" "$tmp/k.db-shm"
    fi
    i=$((i + 1))
done
"$DIVSIM" run $FIXTURE -o "$tmp/k.db" -q
check "the last resume exits 0" test $? -eq 0
rows "$tmp/k.db" > "$tmp/k.txt"
check "killed and resumed: the database of an uninterrupted sweep" cmp -s "$tmp/ref.txt" "$tmp/k.txt"
check "killed and resumed: integrity" test "$(query "$tmp/k.db" "PRAGMA integrity_check")" = ok
check "killed and resumed: no run left running" test "$(query "$tmp/k.db" "SELECT COUNT(*) FROM runs WHERE status <> 'done'")" = 0
# The test means something only if the kills hit a working sweep.
check "most kills found the sweep working ($killed of $KILLS)" test $((2 * killed)) -ge "$KILLS"
check "kills caught runs in flight ($caught of $KILLS)" test $((4 * caught)) -ge "$KILLS"

[ "$failed" -eq 0 ] || cat "$tmp/kills.txt"
echo "e2e_crash: $passed passed, $failed failed (seed $SEED: $killed of $KILLS kills hit the sweep, $caught caught a run in flight, $rounds sweeps completed on the way)"
test "$failed" -eq 0
