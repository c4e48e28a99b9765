#!/bin/sh
# End-to-end tests of the divsim command line: runs tiny experiments and checks
# the database with the sqlite3 shell. Set DIVSIM to the binary under test and
# DIVSIM_E2E_FULL=0 to leave out the quickstart run (about a minute).
set -u
DIVSIM=${DIVSIM:-./divsim}
FULL=${DIVSIM_E2E_FULL:-1}
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
exact() { sqlite3 -batch -noheader -cmd ".mode quote" "$1" "$2"; } # reals round-trip

# --- the basics
check "--version prints a version" sh -c "$DIVSIM --version | grep -q '^divsim '"
check "--help shows usage" sh -c "$DIVSIM --help | grep -q 'usage: divsim'"
"$DIVSIM" frobnicate >/dev/null 2>&1; check "unknown command exits 2" test $? -eq 2
for name in random popularity cf mmr oracle; do
    check "list agents shows $name" sh -c "$DIVSIM list agents | grep -q '^  $name '"
done
check "list envs shows shop and its keys" sh -c "$DIVSIM list envs | grep -q '^  shop ' && $DIVSIM list envs | grep -q ' items '"
check "list metrics shows gini" sh -c "$DIVSIM list metrics | grep -q gini"

# --- a tiny experiment, twice, into two databases
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/a.db" -q; check "tiny run exits 0" test $? -eq 0
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/b.db" -q
check "6 runs, all done" test "$(query "$tmp/a.db" "SELECT COUNT(*) FROM runs WHERE status = 'done'")" = 6
check "every episode stored" test "$(query "$tmp/a.db" "SELECT COUNT(*) FROM episodes")" = 1200
check "eval episodes tagged" test "$(query "$tmp/a.db" "SELECT COUNT(*) FROM episodes WHERE phase = 'eval'")" = 480
check "windows stored per phase" test "$(query "$tmp/a.db" "SELECT COUNT(*) FROM windows WHERE run_id = (SELECT MIN(id) FROM runs)")" = 5
check "params hold every expanded key" test "$(query "$tmp/a.db" "SELECT value FROM params WHERE key = 'env.items' LIMIT 1")" = 120
dump() { exact "$1" "SELECT r.agent, r.seed, e.* FROM episodes e JOIN runs r ON r.id = e.run_id ORDER BY e.run_id, e.episode; SELECT * FROM windows ORDER BY run_id, phase, window; SELECT * FROM phases ORDER BY run_id, phase"; }
dump "$tmp/a.db" > "$tmp/a.txt"; dump "$tmp/b.db" > "$tmp/b.txt"
check "same seeds give identical episodes and windows" cmp -s "$tmp/a.txt" "$tmp/b.txt"
check "the dump is not empty" test -s "$tmp/a.txt"
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/a.db" 2> "$tmp/again.txt"
check "a second run skips finished runs" grep -q ": 0 done, 6 skipped" "$tmp/again.txt"
check "compare prints each agent" sh -c "$DIVSIM compare '$tmp/a.db' | grep -q oracle && $DIVSIM compare '$tmp/a.db' | grep -q random"
check "dry run lists 6 runs" sh -c "$DIVSIM run tests/fixtures/tiny.ini --dry-run | grep -q '^6 runs'"

# --- SIGINT: the run in progress is recorded as interrupted, and resumes
long="--set agent.kind=random --set experiment.seeds=1 --set experiment.train_episodes=400000 --set env.churn_patience=0"
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/i.db" -q $long &
pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
    [ "$(query "$tmp/i.db" "SELECT COUNT(*) FROM runs" 2>/dev/null)" = 1 ] && break
    sleep 0.2
done
sleep 0.3
kill -INT $pid
wait $pid
check "SIGINT exits 130" test $? -eq 130
check "the interrupted run is recorded" test "$(query "$tmp/i.db" "SELECT status FROM runs")" = interrupted
check "no unfinished episode is stored" test "$(query "$tmp/i.db" "SELECT COUNT(*) FROM episodes WHERE end_time < start_time OR length = 0")" = 0
check "the database is intact" test "$(query "$tmp/i.db" "PRAGMA integrity_check")" = ok
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/i.db" -q $long
check "the same command resumes" test "$(query "$tmp/i.db" "SELECT status FROM runs")" = done

# --- parallel workers, shards and merge: the same rows as one process
rows() { exact "$1" "SELECT r.agent, r.seed, r.status, r.config, e.* FROM episodes e JOIN runs r ON r.id = e.run_id ORDER BY e.run_id, e.episode; SELECT * FROM windows ORDER BY run_id, phase, window; SELECT * FROM phases ORDER BY run_id, phase; SELECT * FROM params ORDER BY run_id, key"; }
rows "$tmp/a.db" > "$tmp/one.txt"
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/j2.db" -q -j 2
rows "$tmp/j2.db" > "$tmp/j2.txt"
check "-j 2 gives the rows of -j 1" cmp -s "$tmp/one.txt" "$tmp/j2.txt"
(cd "$tmp" && parallel "$OLDPWD/$DIVSIM" run "$OLDPWD/tests/fixtures/tiny.ini" -o shard{}.db -q --shard {}/3 ::: 1 2 3)
check "three shards through GNU parallel" test -f "$tmp/shard1.db" -a -f "$tmp/shard2.db" -a -f "$tmp/shard3.db"
total=0
for k in 1 2 3; do total=$((total + $(query "$tmp/shard$k.db" "SELECT COUNT(*) FROM runs"))); done
check "the shards split the grid" test $total -eq 6
"$DIVSIM" merge "$tmp/merged.db" "$tmp/shard1.db" "$tmp/shard2.db" "$tmp/shard3.db" 2>/dev/null
check "merge exits 0" test $? -eq 0
rows "$tmp/merged.db" > "$tmp/merged.txt"
check "the merged shards give the rows of one process" cmp -s "$tmp/one.txt" "$tmp/merged.txt"
"$DIVSIM" merge "$tmp/merged.db" "$tmp/shard2.db" 2> "$tmp/again.txt"
rows "$tmp/merged.db" > "$tmp/merged2.txt"
check "merging again changes nothing" cmp -s "$tmp/merged.txt" "$tmp/merged2.txt"
check "merging again reports the runs as there" grep -q "0 runs added, 0 replaced unfinished copies, $(query "$tmp/shard2.db" "SELECT COUNT(*) FROM runs") already there" "$tmp/again.txt"
logged() { exact "$1" "SELECT * FROM interactions ORDER BY run_id, seq"; }
log_set="--set experiment.log_interactions=true"
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/log-one.db" -q $log_set
for k in 1 2; do "$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/log-shard$k.db" -q --shard $k/2 $log_set; done
"$DIVSIM" merge "$tmp/log-merged.db" "$tmp/log-shard1.db" "$tmp/log-shard2.db" 2>/dev/null
check "logged runs have interactions" test "$(query "$tmp/log-one.db" "SELECT COUNT(*) FROM interactions")" -gt 0
check "merged shards keep their interaction logs" test "$(logged "$tmp/log-merged.db")" = "$(logged "$tmp/log-one.db")"
cp "$tmp/shard1.db" "$tmp/liar.db"
query "$tmp/liar.db" "UPDATE runs SET config = config || 'x = 1' || char(10) WHERE id = (SELECT MIN(id) FROM runs)"
cp "$tmp/merged.db" "$tmp/merged-before.db"
"$DIVSIM" merge "$tmp/merged.db" "$tmp/liar.db" 2> "$tmp/err.txt"
check "merge refuses a disagreeing configuration" test $? -eq 2
check "the refusal says why" grep -q "different configuration" "$tmp/err.txt"
check "a refused merge writes nothing" test "$(rows "$tmp/merged.db")" = "$(rows "$tmp/merged-before.db")"
check "status counts the merged runs" sh -c "$DIVSIM status '$tmp/merged.db' | grep -Eq '^  tiny +6 +6 +0 +0 +0 +0 +0$'"
"$DIVSIM" run tests/fixtures/tiny.ini --shard 4/3 -o "$tmp/x.db" -q 2>/dev/null
check "a bad shard exits 2" test $? -eq 2

# --- SIGKILL at several points of a -j 2 sweep, resumed each time
medium="--set env.churn_patience=0 --set experiment.train_episodes=30000 --set env.users=400"
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/ref.db" -q $medium
cut_short=0
for delay in 0.3 0.8 1.3 1.8 2.3; do
    "$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/k.db" -q -j 2 $medium &
    pid=$!
    sleep $delay
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    sleep 0.1 # the workers follow their parent
    running=$(query "$tmp/k.db" "SELECT COUNT(*) FROM runs WHERE status = 'running'")
    cut_short=$((cut_short + running))
done
check "the kills caught runs in flight" test $cut_short -ge 1
sleep 0.2
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/k.db" -q -j 2 $medium
check "killed and resumed: the rows of an uninterrupted sweep" test "$(rows "$tmp/k.db")" = "$(rows "$tmp/ref.db")"
check "killed and resumed: integrity" test "$(query "$tmp/k.db" "PRAGMA integrity_check")" = ok
check "killed and resumed: every run done" test "$(query "$tmp/k.db" "SELECT COUNT(*) FROM runs WHERE status = 'done'")" = 6
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/t.db" -q -j 2 $medium &
pid=$!
sleep 0.6
kill -TERM $pid
wait $pid
check "SIGTERM to a -j 2 sweep exits 143" test $? -eq 143
check "SIGTERM leaves no run in status running" test "$(query "$tmp/t.db" "SELECT COUNT(*) FROM runs WHERE status = 'running'")" = 0
check "SIGTERM leaves runs done or interrupted" test "$(query "$tmp/t.db" "SELECT COUNT(*) FROM runs WHERE status NOT IN ('done', 'interrupted')")" = 0
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/t.db" -q -j 2 $medium
check "the stopped sweep resumes to the uninterrupted rows" test "$(rows "$tmp/t.db")" = "$(rows "$tmp/ref.db")"

# --- named variants and the pretraining pipeline: logs -> pretrain -> init
"$DIVSIM" run tests/fixtures/variants.ini -o "$tmp/v.db" -q 2> "$tmp/err.txt"
check "a missing checkpoint is refused before any run" test $? -eq 2 -a ! -e "$tmp/v.db"
check "a missing checkpoint is named with file:line" grep -q "variants.ini:38: \[agent.ppo_pre\] 'init': cannot read checkpoint 'no-such-dir/pretrained.ckpt'" "$tmp/err.txt"
"$DIVSIM" run tests/fixtures/variants.ini -o "$tmp/logs.db" -q --set agent.kind=cf --set experiment.log_interactions=true
"$DIVSIM" pretrain "$tmp/logs.db" -o "$tmp/pre.ckpt" --context 8 --epochs 2 2> "$tmp/err.txt"
check "pretrain refuses the logs of two seeds' worlds" grep -q "come from 2 seeds" "$tmp/err.txt"
for s in 1 2; do "$DIVSIM" pretrain "$tmp/logs.db" -o "$tmp/pre-$s.ckpt" --run-seed $s --context 8 --epochs 2 > /dev/null; done
check "pretrain writes a checkpoint per seed from cf's logs" test -s "$tmp/pre-1.ckpt" -a -s "$tmp/pre-2.ckpt"
init="--set agent.ppo_pre.init=$tmp/pre-{seed}.ckpt"
"$DIVSIM" run tests/fixtures/variants.ini -o "$tmp/v.db" -q $init
check "the variants run, one from the checkpoint" test $? -eq 0
check "runs go by the variants' names" test "$(query "$tmp/v.db" "SELECT group_concat(agent || ':' || status, ' ') FROM (SELECT DISTINCT agent, status FROM runs ORDER BY agent)")" = "cf:done ppo:done ppo_pre:done ppo_tf:done"
check "a variant records its base kind" test "$(query "$tmp/v.db" "SELECT DISTINCT p.value FROM params p JOIN runs r ON r.id = p.run_id WHERE r.agent = 'ppo_tf' AND p.key = 'agent.kind'")" = ppo
check "a variant's keys are under its name" test "$(query "$tmp/v.db" "SELECT COUNT(*) FROM params WHERE key = 'agent.ppo_tf.encoder' AND value = 'transformer'")" = 2
check "compare --by agent shows the variants" sh -c "$DIVSIM compare '$tmp/v.db' --by agent | grep -q ppo_tf"
check "status counts the variants" sh -c "$DIVSIM status '$tmp/v.db' | grep -q '^  ppo_tf  *2  *2 '"
"$DIVSIM" run tests/fixtures/variants.ini -o "$tmp/v.db" $init 2> "$tmp/again.txt"
check "a second run skips the variants' finished runs" grep -q ": 0 done, 8 skipped" "$tmp/again.txt"

# --- bad input: exit 2, file:line and key in the message, database untouched
cp "$tmp/a.db" "$tmp/before.db"
expect_input_error() { # FILE PATTERN
    "$DIVSIM" run "$1" -o "$tmp/a.db" -q 2> "$tmp/err.txt"
    code=$?
    check "$1 exits 2" test $code -eq 2
    check "$1 message matches '$2'" grep -q "$2" "$tmp/err.txt"
}
expect_input_error tests/fixtures/bad_key.ini "bad_key.ini:7: .*'itemz'.*did you mean 'items'"
expect_input_error tests/fixtures/bad_number.ini "bad_number.ini:3: .*'train_episodes'"
expect_input_error "$tmp/missing.ini" "missing.ini"
check "bad input leaves the database untouched" cmp -s "$tmp/a.db" "$tmp/before.db"
"$DIVSIM" run tests/fixtures/tiny.ini --set env.itmes=5 -o "$tmp/c.db" -q 2> "$tmp/err.txt"
check "bad --set exits 2" test $? -eq 2
check "bad --set suggests the key" grep -q "did you mean 'items'" "$tmp/err.txt"
check "bad --set creates no database" test ! -e "$tmp/c.db"

# --- the quickstart: 15 runs done, and a sensible ordering of agents
if [ "$FULL" = 1 ]; then
    "$DIVSIM" run experiments/quickstart.ini -o "$tmp/q.db" -q
    check "quickstart exits 0" test $? -eq 0
    check "quickstart has 15 done runs" test "$(query "$tmp/q.db" "SELECT COUNT(*) FROM runs WHERE status = 'done'")" = 15
    mean() { # AGENT COLUMN: mean over runs of the per-run eval mean
        query "$tmp/q.db" "SELECT AVG(m) FROM (SELECT AVG(e.$2) AS m FROM episodes e JOIN runs r ON r.id = e.run_id WHERE r.agent = '$1' AND e.phase = 'eval' GROUP BY r.id)"
    }
    above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
    check "oracle above cf on purchases" above "$(mean oracle purchases)" "$(mean cf purchases)"
    check "popularity above random on purchases" above "$(mean popularity purchases)" "$(mean random purchases)"
    check "mmr above cf on ILD" above "$(mean mmr ild)" "$(mean cf ild)"

    # Its figures: every kind that applies, PNG and PDF, one series per agent.
    # The quickstart has no swept parameter and no learning agent, so the sweep
    # and training figures are skipped with a note (tests/e2e_plot.sh draws
    # them from a sweep with learners).
    "$DIVSIM" plot "$tmp/q.db" --out "$tmp/qfigs" --format png,pdf --kind all \
        --templates plots > /dev/null 2> "$tmp/qnotes.txt"
    check "quickstart plot exits 0" test $? -eq 0
    for fig in learning_purchases pareto_ild coverage; do
        check "quickstart $fig.png is a PNG" \
            test "$(head -c 4 "$tmp/qfigs/$fig.png" | od -An -c | tr -d ' ')" = '211PNG'
        check "quickstart $fig.pdf is a PDF" test "$(head -c 5 "$tmp/qfigs/$fig.pdf")" = "%PDF-"
        check "quickstart $fig: one series per agent" \
            test "$(sed -n 's/^# series: //p' "$tmp/qfigs/$fig.dat" | sort | tr '\n' ' ')" = \
            "cf mmr oracle popularity random "
    done
    check "quickstart: the sweep figure is skipped with a note" grep -q 'sweep figure skipped' "$tmp/qnotes.txt"
    check "quickstart: the training figure is skipped with a note" \
        grep -q 'training figure skipped' "$tmp/qnotes.txt"
fi

echo "e2e: $passed passed, $failed failed"
test "$failed" -eq 0
