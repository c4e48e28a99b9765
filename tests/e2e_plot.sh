#!/bin/sh
# End-to-end tests of `divsim plot` and `divsim export`: runs the tiny
# experiment (with and without a sweep), draws every kind of figure in PNG and
# PDF, checks the files and that each figure has one series per agent, checks
# the CSV against the sqlite3 shell, and the errors. Set DIVSIM to the binary
# under test; gnuplot and sqlite3 must be installed.
set -u
DIVSIM=${DIVSIM:-./divsim}
DIVSIM=$(cd "$(dirname "$DIVSIM")" && pwd)/$(basename "$DIVSIM")
repo=$(pwd)
templates="$repo/plots"
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
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; }
is_pdf() { [ "$(head -c 5 "$1")" = "%PDF-" ]; }
series() { sed -n 's/^# series: //p' "$1"; } # the series of a data file, one a line
count_series() { series "$1" | wc -l | tr -d ' '; }
plot() { "$DIVSIM" plot "$@" --templates "$templates"; }

# --- two databases: the tiny experiment, and the same with cf's factors swept
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/a.db" -q
check "tiny run exits 0" test $? -eq 0
# The sweep database adds two learning agents, updating every 16 sessions, so
# that the training figure has real diagnostics to draw.
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/s.db" -q --set agent.cf.factors=4,8 \
    --set agent.kind=random,cf,oracle,reinforce,ppo \
    --set agent.reinforce.batch_episodes=16 --set agent.ppo.batch_episodes=16
check "swept tiny run exits 0" test $? -eq 0
agents=$(query "$tmp/a.db" "SELECT COUNT(DISTINCT agent) FROM runs WHERE status = 'done'")
configs=$(query "$tmp/s.db" "SELECT COUNT(DISTINCT config_hash) FROM runs WHERE status = 'done'")
check "the fixture has 3 agents" test "$agents" = 3
check "the sweep has 6 configurations" test "$configs" = 6
agent_names() { query "$1" "SELECT DISTINCT agent FROM runs WHERE status = 'done' ORDER BY agent"; }

# --- every kind, PNG and PDF
out="$tmp/figs"
plot "$tmp/s.db" --out "$out" --format png,pdf --kind all > "$tmp/written.txt" 2> "$tmp/notes.txt"
check "plot --kind all exits 0" test $? -eq 0
for fig in learning_purchases pareto_ild sweep_agent.cf.factors_purchases coverage training; do
    for ext in png pdf; do
        check "$fig.$ext written and not empty" test -s "$out/$fig.$ext"
        check "$fig.$ext is listed on stdout" grep -qx "$out/$fig.$ext" "$tmp/written.txt"
    done
    check "$fig.png is a PNG" is_png "$out/$fig.png"
    check "$fig.pdf is a PDF" is_pdf "$out/$fig.pdf"
    check "$fig.dat has a header naming its columns" grep -q '^# columns: ' "$out/$fig.dat"
    check "$fig.vars.gp defines the series" grep -q '^nseries = ' "$out/$fig.vars.gp"
done
check "nothing skipped, no gnuplot warning" test ! -s "$tmp/notes.txt"

# One series per agent: the pareto and sweep figures have an agent each (cf
# swept, the others flat), the curves one per configuration.
swept_agents=$(query "$tmp/s.db" "SELECT COUNT(DISTINCT agent) FROM runs WHERE status = 'done'")
check "pareto: one series per agent" test "$(count_series "$out/pareto_ild.dat")" = "$swept_agents"
check "pareto: the series are the agents" \
    test "$(series "$out/pareto_ild.dat" | sort)" = "$(agent_names "$tmp/s.db")"
check "pareto: a point per configuration" \
    test "$(grep -c '^ *[0-9.e+-]\{1,\} .*"' "$out/pareto_ild.dat")" = "$configs"
check "pareto: the frontier block" grep -q '^# frontier' "$out/pareto_ild.dat"
check "pareto: cf's points labelled by their factors" \
    test "$(awk '/^# series: /{s = $3} s == "cf" && /^ /{print $8}' "$out/pareto_ild.dat" | tr '\n' ' ')" = '"4" "8" '
check "pareto: the key names cf's swept key" grep -q '"cf (factors)"' "$out/pareto_ild.vars.gp"
check "sweep: one series per agent" \
    test "$(count_series "$out/sweep_agent.cf.factors_purchases.dat")" = "$swept_agents"
check "sweep: cf has a point per factor" \
    test "$(awk '/^# series: /{s = $3} s == "cf" && /^ /' "$out/sweep_agent.cf.factors_purchases.dat" | wc -l)" = 2
check "learning: one series per configuration" \
    test "$(count_series "$out/learning_purchases.dat")" = "$configs"
check "learning: the sweep shows in the titles" \
    grep -qx '# series: cf (factors = 8)' "$out/learning_purchases.dat"
check "coverage: one series per configuration" test "$(count_series "$out/coverage.dat")" = "$configs"
check "training: a series per learning agent" \
    test "$(series "$out/training.dat" | tr '\n' ' ')" = "reinforce ppo "
check "training: KL and value loss drawn for ppo only" \
    grep -q 'panel_series\[3\] = \[" 1 2", " 2", " 2"\]' "$out/training.vars.gp"

# A setting scoped to one agent: ppo sweeps reward.diversity_bonus, which mmr's
# runs record at its default, while mmr sweeps its lambda.
cat > "$tmp/scoped.ini" <<'END'
[experiment]
name = scoped
seeds = 1-2
train_episodes = 120
eval_episodes = 80
window = 50

[env]
kind = shop
items = 120
users = 150
topics = 6
dim = 8
slate = 5

[agent]
kind = ppo, mmr

[agent.ppo]
reward.diversity_bonus = 0, 0.01, 0.02, 0.5
batch_episodes = 16

[agent.mmr]
lambda = 1.0, 0.5

[reward]
kind = purchases
END
"$DIVSIM" run "$tmp/scoped.ini" -o "$tmp/scoped.db" -q
check "scoped run exits 0" test $? -eq 0
sc="$tmp/scoped"
plot "$tmp/scoped.db" --out "$sc" --format png --kind all > /dev/null 2> "$tmp/notes.txt"
check "scoped: plot exits 0" test $? -eq 0
check "scoped: no gnuplot warning" test ! -s "$tmp/notes.txt"
bonus="$sc/sweep_reward.diversity_bonus_purchases"
check "sweep of a bonus scoped to ppo: ppo only, no mmr series" \
    test "$(series "$bonus.dat" | tr '\n' ' ')" = "ppo "
check "sweep of mmr's lambda: mmr only, no ppo series" \
    test "$(series "$sc/sweep_agent.mmr.lambda_purchases.dat" | tr '\n' ' ')" = "mmr "
check "sweep: 0 with values spanning decades is drawn as categories" \
    grep -q '^xaxis = "categories"' "$bonus.vars.gp"
check "sweep: categories at 1, 2, 3, 4" \
    test "$(awk '/^ /{print $1 "@" $6}' "$bonus.dat" | tr '\n' ' ')" = "0@1 0.01@2 0.02@3 0.5@4 "
check "sweep: lambda 0.5 and 1 on a linear axis" \
    grep -q '^xaxis = "linear"' "$sc/sweep_agent.mmr.lambda_purchases.vars.gp"
check "pareto: mmr's key names lambda only" grep -q '"mmr (lambda)"' "$sc/pareto_ild.vars.gp"
check "pareto: ppo's key names the bonus only" \
    grep -q '"ppo (diversity_bonus)"' "$sc/pareto_ild.vars.gp"
check "pareto: mmr's points labelled by lambda alone" \
    test "$(awk '/^# series: /{s = $3} s == "mmr" && /^ /{print $8}' "$sc/pareto_ild.dat" | tr '\n' ' ')" = '"0.5" "1" '
placed=$(awk '/^# series: /{s = 1} /^# frontier/{s = 0} s && /^ / && $11 >= 1 && $11 <= 3' \
    "$sc/pareto_ild.dat" | wc -l)
check "pareto: each of the 6 points has a placed label (columns 9-11)" test "$placed" = 6
check "learning: mmr's titles name lambda only" \
    test "$(series "$sc/learning_purchases.dat" | grep -c '^mmr (lambda = [0-9.]*)$')" = 2
# ppo updates after every 16 train sessions: update u is drawn at (u + 1) * 16.
updates=$(query "$tmp/scoped.db" "SELECT COUNT(DISTINCT \"update\") FROM updates")
expected=$(seq 16 16 $((16 * updates)) | tr '\n' ' ')
first_x=$(awk '/^# series: ppo .diversity_bonus = 0.$/{s = 1; next} /^# series/{s = 0}
               s && /^ /{print $1}' "$sc/training.dat" | tr '\n' ' ')
check "training: the x column is train episodes, (update + 1) * batch_episodes" \
    test "$first_x" = "$expected"
check "training: the x axis is labelled in episodes" \
    grep -q '^xlabel = "train episodes"' "$sc/training.vars.gp"
# All positive and two decades apart: a log axis.
"$DIVSIM" run tests/fixtures/tiny.ini -o "$tmp/log.db" -q --set agent.cf.factors=2,20,200 \
    --set agent.kind=cf
plot "$tmp/log.db" --out "$tmp/logfigs" --format png --kind sweep > /dev/null
check "sweep over 2 .. 200: exits 0" test $? -eq 0
check "sweep over 2 .. 200: a log axis" \
    grep -q '^xaxis = "log"' "$tmp/logfigs/sweep_agent.cf.factors_purchases.vars.gp"

# Without a sweep, every figure has exactly one series per agent.
plot "$tmp/a.db" --out "$tmp/plain" --format png --kind learning,pareto,coverage > /dev/null
check "plain: plot exits 0" test $? -eq 0
for fig in learning_purchases pareto_ild coverage; do
    check "plain $fig: one series per agent" test "$(count_series "$tmp/plain/$fig.dat")" = "$agents"
    check "plain $fig: the series are the agents" \
        test "$(series "$tmp/plain/$fig.dat" | sort)" = "$(agent_names "$tmp/a.db")"
    check "plain $fig.png is a PNG" is_png "$tmp/plain/$fig.png"
done
check "plain learning: a bin per window of each phase" \
    test "$(awk '/^# series: random/{s = 1; next} /^# series/{s = 0} s && /^ /' "$tmp/plain/learning_purchases.dat" | wc -l)" = 5

# Kinds with nothing to draw are skipped with a note, not an error.
plot "$tmp/a.db" --out "$tmp/plain" --kind sweep,training 2> "$tmp/notes.txt" > /dev/null
check "nothing to sweep or train: exit 0" test $? -eq 0
check "the sweep skip is noted" grep -q 'sweep figure skipped' "$tmp/notes.txt"
check "the training skip is noted" grep -q 'training figure skipped' "$tmp/notes.txt"

# Other metrics, SVG, the default output directory, and the redraw command.
plot "$tmp/s.db" --out "$tmp/more" --format svg --kind learning,sweep,pareto --metric coverage \
    --diversity topic_entropy > /dev/null
check "--metric coverage (a window metric) exits 0" test $? -eq 0
check "learning of coverage is an SVG" grep -q '<svg' "$tmp/more/learning_coverage.svg"
check "sweep of coverage written" test -s "$tmp/more/sweep_agent.cf.factors_coverage.svg"
check "pareto against topic entropy written" test -s "$tmp/more/pareto_topic_entropy.svg"
(cd "$tmp" && "$DIVSIM" plot a.db --kind pareto --templates "$templates" > /dev/null)
check "default output: plots/<experiment>/" is_png "$tmp/plots/tiny/pareto_ild.png"
redraw=$(sed -n 's/^#   //p' "$out/coverage.vars.gp")
rm -f "$out/coverage.pdf"
(cd "$tmp" && eval "$redraw")
check "the redraw command in the vars file works" is_pdf "$out/coverage.pdf"

# --- export: CSV rows equal the table's rows; values read back unchanged
for table in runs params episodes windows phases updates planned run_summary; do
    "$DIVSIM" export "$tmp/s.db" --table $table --csv > "$tmp/$table.csv"
    check "export $table exits 0" test $? -eq 0
    rm -f "$tmp/imported.db"
    sqlite3 "$tmp/imported.db" ".import --csv $tmp/$table.csv t"
    check "export $table: as many rows as sqlite3 counts" \
        test "$(query "$tmp/imported.db" "SELECT COUNT(*) FROM t")" = \
             "$(query "$tmp/s.db" "SELECT COUNT(*) FROM $table")"
done
check "export: a header row" test "$(head -n 1 "$tmp/windows.csv" | tr -d '\r')" = \
    "run_id,window,phase,episodes,sim_time,coverage,gini,exposure_entropy,exposure_entropy_norm,retention,churn_rate,reward,ild"
check "export: RFC 4180 line ends" sh -c "head -n 1 '$tmp/runs.csv' | od -An -tx1 | grep -q '0d 0a'"
rm -f "$tmp/imported.db"
sqlite3 "$tmp/imported.db" ".import --csv $tmp/episodes.csv e" ".import --csv $tmp/runs.csv r"
# Within one unit in the last place: the CSV has 17 significant digits, which
# name each double exactly, but SQLite's own text-to-real conversion (3.40) is
# not always correctly rounded.
same() { echo "($1 IS CAST($2 AS REAL) OR abs($1 - CAST($2 AS REAL)) <= 2.3e-16 * abs($1))"; }
check "export: reals read back to the same doubles, NULL as empty" test "$(query "$tmp/imported.db" \
    "ATTACH '$tmp/s.db' AS o; SELECT COUNT(*) FROM o.episodes x JOIN e
     ON x.run_id = CAST(e.run_id AS INTEGER) AND x.episode = CAST(e.episode AS INTEGER)
     WHERE $(same x.ild e.ild) AND $(same x.start_time e.start_time)
       AND $(same x.revenue e.revenue) AND $(same x.novelty e.novelty)
       AND x.phase IS e.phase")" = "$(query "$tmp/s.db" "SELECT COUNT(*) FROM episodes")"
check "export: multi-line configurations quoted" test "$(query "$tmp/imported.db" \
    "ATTACH '$tmp/s.db' AS o; SELECT COUNT(*) FROM o.runs x JOIN r ON x.id = CAST(r.id AS INTEGER)
     WHERE x.config = r.config AND x.message IS NULLIF(r.message, '')")" = \
    "$(query "$tmp/s.db" "SELECT COUNT(*) FROM runs")"
"$DIVSIM" export "$tmp/s.db" --table episodes --where "phase = 'eval' AND purchases > 0" --csv \
    > "$tmp/where.csv"
rm -f "$tmp/imported.db"
sqlite3 "$tmp/imported.db" ".import --csv $tmp/where.csv w"
check "export --where filters rows" test "$(query "$tmp/imported.db" "SELECT COUNT(*) FROM w")" = \
    "$(query "$tmp/s.db" "SELECT COUNT(*) FROM episodes WHERE phase = 'eval' AND purchases > 0")"

# --- errors: exit 2 and a message naming the problem
expect_error() { # DESCRIPTION PATTERN COMMAND...
    what=$1; pattern=$2; shift 2
    "$@" > /dev/null 2> "$tmp/err.txt"
    code=$?
    check "$what exits 2" test $code -eq 2
    check "$what says '$pattern'" grep -q "$pattern" "$tmp/err.txt"
}
expect_error "unknown metric" "unknown metric 'nope'" plot "$tmp/a.db" --out "$tmp/e" --metric nope
expect_error "unknown parameter" "unknown parameter 'agent.cf.nope'" \
    plot "$tmp/s.db" --out "$tmp/e" --param agent.cf.nope
expect_error "parameter not swept" "'env.items' has one value" \
    plot "$tmp/s.db" --out "$tmp/e" --param env.items
cp "$tmp/a.db" "$tmp/empty.db"
query "$tmp/empty.db" "DELETE FROM runs"
expect_error "empty database" "no finished runs in" plot "$tmp/empty.db" --out "$tmp/e"
: > "$tmp/blank.db"
expect_error "a file that is no results database" "not a divsim results database" \
    plot "$tmp/blank.db" --out "$tmp/e"
mkdir "$tmp/bin"
expect_error "missing gnuplot" "gnuplot is not installed: apt-get install gnuplot-nox" \
    env PATH="$tmp/bin" "$DIVSIM" plot "$tmp/a.db" --out "$tmp/e" --templates "$templates"
expect_error "unknown format" "unknown format 'jpeg'" plot "$tmp/a.db" --format jpeg
expect_error "missing templates" "no gnuplot templates in" \
    "$DIVSIM" plot "$tmp/a.db" --out "$tmp/e" --templates "$tmp/bin"
check "errors write no figure" test ! -e "$tmp/e/pareto_ild.png"
expect_error "export: unknown table" "unknown table 'nope'" "$DIVSIM" export "$tmp/a.db" --table nope
expect_error "export: two statements" "holds ';'" \
    "$DIVSIM" export "$tmp/a.db" --table runs --where "1; DELETE FROM runs"
check "export: the database is untouched" test "$(query "$tmp/a.db" "SELECT COUNT(*) FROM runs")" = 6
expect_error "export: bad condition" "no such column: nope" \
    "$DIVSIM" export "$tmp/a.db" --table runs --where "nope = 1"
expect_error "export: no database" "'$tmp/missing.db' is not a file" \
    "$DIVSIM" export "$tmp/missing.db" --table runs

echo "e2e_plot: $passed passed, $failed failed"
test "$failed" -eq 0
