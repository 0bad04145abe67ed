#!/usr/bin/env bash
# tessera cp (issue 14), at full size: a 200 MiB random file in 8 MiB parts (25 parts).
#   1. upload, then the same file to another key: instant (sent=0, instant_parts=25);
#      both objects read back by aws-cli v2 and tessera cp (SHA-1), the multipart ETag;
#   2. the client SIGKILLed three times during an upload (after ~3, ~12 and ~20 parts
#      recorded in its resume file) and rerun each time: the parts recorded at a kill
#      are resumed, never sent again;
#   3. the same for a download (ranges recorded in .NAME.tessera-download): the target
#      appears only once complete;
#   4. the server SIGKILLed during an upload: restarted at once, the client rides it
#      out (retries over ~8 s); kept down 10 s, the client gives up saying to run the
#      same command again, and the rerun resumes;
#   5. the object replaced (same size, new ETag) while a download is paused by SIGINT:
#      the rerun starts over (restarts=1) and writes the new object;
#   6. SIGINT during an upload: exit 130, "run the same command again", the rerun
#      sends only the rest.
# The client runs with stdout not a terminal, so it prints 'part n=.. bytes=.. how=..'
# per part and a last 'done ..' line; those and its resume files are what is checked,
# with SHA-1 of every object downloaded against its source. Bytes "sent" by a killed
# run are the parts it reported sent (a part in flight at a kill is not counted).
# TESSERA_CP_TEST_PART_DELAY (a hidden test option) slows each part so a run can be
# interrupted half-way.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin cp-tessera
export AWS_PAGER=""
s3api() { "${AWSCLI_V2:-/usr/bin/aws}" --endpoint-url "$ENDPOINT" --output json s3api "$@"; }
awss3() { "${AWSCLI_V2:-/usr/bin/aws}" --endpoint-url "$ENDPOINT" s3 "$@"; }
MiB=$((1024 * 1024))
PART=$((8 * MiB))
NPARTS=25
SIZE=$((NPARTS * PART)) # 200 MiB
DELAY=300ms             # before each part of an interrupted run
B="s3://$TEST_BUCKET"
export XDG_STATE_HOME="$WORK/state"
UPLOADS="$XDG_STATE_HOME/tessera/uploads"
DL="$WORK/dl"
mkdir -p "$DL"
EXTERNAL=0
[[ -n "${S3_COMPAT_ENDPOINT:-}" ]] && EXTERNAL=1
T0=$SECONDS

sha1_of() { sha1sum "$1" | cut -d' ' -f1; }
# assert_same_sha1 LABEL SOURCE COPY: the copy exists with the source's size and SHA-1.
assert_same_sha1() {
    if [[ ! -f "$3" ]]; then
        fail "$1" "file was not written: $3"
        return
    fi
    local es as eh ah
    es=$(size_of "$2") as=$(size_of "$3") eh=$(sha1_of "$2") ah=$(sha1_of "$3")
    if [[ "$es" == "$as" && "$eh" == "$ah" ]]; then
        pass "$1 ($as bytes, sha1 $ah)"
    else
        fail "$1" "expected: $es bytes sha1 $eh" "actual:   $as bytes sha1 $ah"
    fi
}
assert_absent() { if [[ -e "$2" ]]; then fail "$1" "exists: $2"; else pass "$1"; fi; }
assert_present() { if [[ -e "$2" ]]; then pass "$1"; else fail "$1" "missing: $2"; fi; }
# assert_le LABEL A B / assert_lt LABEL A B / assert_ge LABEL A B: integer comparisons.
assert_le() { if (($2 <= $3)); then pass "$1 ($2 <= $3)"; else fail "$1" "expected $2 <= $3"; fi; }
assert_lt() { if (($2 < $3)); then pass "$1 ($2 < $3)"; else fail "$1" "expected $2 < $3"; fi; }
assert_ge() { if (($2 >= $3)); then pass "$1 ($2 >= $3)"; else fail "$1" "expected $2 >= $3"; fi; }

# cp_fg LOG ARGS...: tessera cp ARGS in the foreground, stdout to LOG.out, stderr to
# LOG.err; sets RC.
RC=0
cp_fg() {
    local log="$1"
    shift
    RC=0
    "$TESSERA_BIN" cp --endpoint "$ENDPOINT" "$@" >"$log.out" 2>"$log.err" || RC=$?
}
# cp_bg LOG ARGS...: the same in the background with the part delay; sets CP_PID.
# A background job of a script starts with SIGINT ignored: env restores it, so
# kill -INT reaches the client's Ctrl-C handler.
CP_PID=""
cp_bg() {
    local log="$1"
    shift
    env --default-signal=INT TESSERA_CP_TEST_PART_DELAY="$DELAY" \
        "$TESSERA_BIN" cp --endpoint "$ENDPOINT" "$@" >"$log.out" 2>"$log.err" &
    CP_PID=$!
}
# kill9 PID: SIGKILL and reap it (quietly: no "Killed" line from bash); sets RC.
kill9() {
    RC=0
    { kill -KILL "$1"; wait "$1"; } 2>/dev/null || RC=$?
}
# reap PID SECS: wait up to SECS for PID to exit and reap it; sets RC (999 if it
# did not exit in time; it is then killed).
reap() {
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    if kill -0 "$1" 2>/dev/null; then
        kill9 "$1"
        RC=999
        return
    fi
    RC=0
    { wait "$1"; } 2>/dev/null || RC=$?
}
# show_run LOG: the tail of a run's output, for failures.
show_run() { printf 'stdout: %s | stderr: %s' "$(tail -n 3 "$1.out" | join_lines)" "$(tail -c 600 "$1.err")"; }
# assert_rc LABEL WANT LOG: the last run's exit code.
assert_rc() {
    if [[ "$RC" == "$2" ]]; then pass "$1 (exit $RC)"; else fail "$1" "exit $RC, expected $2" "$(show_run "$3")"; fi
}

# field LOG NAME: NAME's value in the 'done' line of LOG.out.
field() { awk -v k="$2" '$1 == "done" { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) print a[2] } }' "$1.out"; }
# part_numbers LOG HOW: the part numbers LOG.out reports with how=HOW, sorted.
part_numbers() { awk -v how="how=$2" '$1 == "part" && $4 == how { sub("n=", "", $2); print $2 }' "$1.out" | sort -n; }
# sent_in LOG: bytes of the parts LOG.out reports sent.
sent_in() { awk '$1 == "part" && $4 == "how=sent" { sub("bytes=", "", $3); s += $3 } END { print s + 0 }' "$1.out"; }
count_lines() { grep -c . || true; }
# in_both A B: the lines (numbers) both lists hold.
in_both() { comm -12 <(sort <<<"$1") <(sort <<<"$2") | sort -n; }

# recorded_upload: the part numbers in the upload resume file(s) of $UPLOADS.
recorded_upload() {
    local f
    for f in "$UPLOADS"/*.json; do
        [[ -f "$f" ]] && jq -r '.parts | keys[]' "$f" 2>/dev/null
    done | sort -n
}
upload_files() { find "$UPLOADS" -name '*.json' 2>/dev/null | count_lines; }
# recorded_download STATE: the ranges in a download resume file, as part numbers
# (index + 1). "done" is a list of indexes, or an object keyed by index.
recorded_download() {
    [[ -f "$1" ]] || return 0
    jq -r '.done | if type == "array" then .[] else keys[] end | tonumber + 1' "$1" 2>/dev/null | sort -n
}
# wait_recorded N PID CMD...: poll CMD (it prints recorded part numbers) every 50 ms
# until it lists at least N, while PID runs (at most 60 s).
wait_recorded() {
    local n="$1" pid="$2" deadline=$((SECONDS + 60))
    shift 2
    while ((SECONDS < deadline)); do
        (($("$@" | count_lines) >= n)) && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
csv() { paste -sd, -; }
elapsed() { log "  (step took $((SECONDS - STEP_T)) s, scenario $((SECONDS - T0)) s)"; }

step "setup: bucket, client versions, a 200 MiB random file"
STEP_T=$SECONDS
run_ok "aws --version is aws-cli 2" "${AWSCLI_V2:-/usr/bin/aws}" --version && assert_contains "aws-cli v2" "$OUT$ERR" "aws-cli/2."
run_ok "create-bucket $TEST_BUCKET" s3api create-bucket --bucket "$TEST_BUCKET"
A="$WORK/a.bin"
make_random_file "$A" 200
ETAG_A="$(multipart_etag "$A" "$PART")"
log "  a.bin: $(size_of "$A") bytes, multipart ETag $ETAG_A"

# ---------------------------------------------------------------------------
step "1. upload 200 MiB (25 parts), then the same file to another key: instant"
STEP_T=$SECONDS
L="$WORK/up1"
cp_fg "$L" --part-size 8MiB --concurrency 4 "$A" "$B/inst/first.bin"
assert_rc "tessera cp a.bin $B/inst/first.bin" 0 "$L"
assert_eq "first upload: done bytes" "$(field "$L" bytes)" "$SIZE"
assert_eq "first upload: sent the whole file" "$(field "$L" sent)" "$SIZE"
assert_eq "first upload: parts" "$(field "$L" parts)" "$NPARTS"
assert_eq "first upload: ETag is md5(part MD5s)-25" "\"$(field "$L" etag)\"" "$ETAG_A"
assert_eq "first upload: 25 'part .. how=sent' lines, parts 1..25" "$(part_numbers "$L" sent | csv)" "$(seq 1 $NPARTS | csv)"
assert_eq "no upload resume file left after a finished upload" "$(upload_files)" 0
L="$WORK/up2"
cp_fg "$L" --part-size 8MiB --concurrency 4 "$A" "$B/inst/second.bin"
assert_rc "tessera cp a.bin $B/inst/second.bin (same content, another key)" 0 "$L"
if [[ $EXTERNAL -eq 0 ]]; then
    assert_eq "second upload: sent=0 (no part body crossed the wire)" "$(field "$L" sent)" 0
    assert_eq "second upload: instant_parts=25" "$(field "$L" instant_parts)" "$NPARTS"
    assert_eq "second upload: skipped_parts=25" "$(field "$L" skipped_parts)" "$NPARTS"
    assert_eq "second upload: every part line says how=instant" "$(part_numbers "$L" instant | csv)" "$(seq 1 $NPARTS | csv)"
else
    log "  external endpoint: no instant upload expected"
fi
assert_eq "second upload: parts" "$(field "$L" parts)" "$NPARTS"
assert_eq "second upload: ETag" "\"$(field "$L" etag)\"" "$ETAG_A"
for k in inst/first.bin inst/second.bin; do
    if run_ok "head-object $k (aws-cli)" s3api head-object --bucket "$TEST_BUCKET" --key "$k"; then
        assert_eq "$k: ContentLength" "$(jq -r .ContentLength <<<"$OUT")" "$SIZE"
        assert_eq "$k: ETag is the multipart ETag" "$(jq -r .ETag <<<"$OUT")" "$ETAG_A"
    fi
done
run_ok "aws s3 cp $B/inst/first.bin (download, aws-cli v2)" awss3 cp --only-show-errors "$B/inst/first.bin" "$DL/first-aws.bin" &&
    assert_same_sha1 "inst/first.bin read by aws-cli = a.bin" "$A" "$DL/first-aws.bin"
L="$WORK/down1"
RC=0
AWS_ENDPOINT_URL="$ENDPOINT" "$TESSERA_BIN" cp "$B/inst/second.bin" "$DL/second.bin" >"$L.out" 2>"$L.err" || RC=$?
assert_rc "tessera cp $B/inst/second.bin FILE (endpoint from AWS_ENDPOINT_URL)" 0 "$L"
assert_same_sha1 "inst/second.bin read by tessera cp = a.bin" "$A" "$DL/second.bin"
assert_eq "download: done bytes" "$(field "$L" bytes)" "$SIZE"
assert_eq "download: sent (received) the whole object" "$(field "$L" sent)" "$SIZE"
assert_eq "download: done etag" "\"$(field "$L" etag)\"" "$ETAG_A"
assert_absent "download: no .second.bin.tessera-partial left" "$DL/.second.bin.tessera-partial"
assert_absent "download: no .second.bin.tessera-download left" "$DL/.second.bin.tessera-download"
rm -f "$DL/first-aws.bin" "$DL/second.bin"
elapsed

# ---------------------------------------------------------------------------
# kill_loop KIND SOURCE DEST STATE_CMD...: runs 'tessera cp SOURCE DEST' with the part
# delay and --concurrency 2, SIGKILLs it 0-299 ms after STATE_CMD lists >= 3, 12, then
# 20 parts, reruns it each time, and a last time without delay to finish. Checks each
# rerun resumes exactly what the kill left recorded and never sends it again.
# Sets LAST_LOG (the final run) and KILLED_SENT (bytes the killed runs reported sent).
LAST_LOG="" KILLED_SENT=0
kill_loop() {
    local kind="$1" src="$2" dst="$3"
    shift 3
    local run=0 t log prev="" now again jitter
    KILLED_SENT=0
    for t in 3 12 20; do
        run=$((run + 1))
        log="$WORK/$kind-kill-$run"
        cp_bg "$log" --concurrency 2 "$src" "$dst"
        if wait_recorded "$t" "$CP_PID" "$@"; then
            # 0-299 ms later: sometimes between parts, sometimes with a part on the wire.
            jitter="$(printf '0.%03d' $((RANDOM % 300)))"
            sleep "$jitter"
            kill9 "$CP_PID"
            assert_eq "$kind run $run: SIGKILLed ${jitter} s after >= $t parts were recorded" "$RC" 137
        else
            reap "$CP_PID" 5
            fail "$kind run $run: still running with >= $t parts recorded" "exit $RC" "$(show_run "$log")"
        fi
        now="$("$@")"
        log "  run $run: $(count_lines <<<"$now") parts recorded at the kill: $(csv <<<"$now")"
        assert_ge "$kind run $run: parts recorded at the kill" "$(count_lines <<<"$now")" "$t"
        if ((run > 1)); then
            assert_eq "$kind run $run resumed exactly the parts recorded at kill $((run - 1))" \
                "$(part_numbers "$log" resumed | csv)" "$(csv <<<"$prev")"
            again="$(in_both "$prev" "$(part_numbers "$log" sent; part_numbers "$log" instant)")"
            assert_eq "$kind run $run sent none of the parts recorded at kill $((run - 1))" "$(csv <<<"$again")" ""
        fi
        ((run > 1)) && assert_eq "$kind run $run: the parts recorded at kill $((run - 1)) are still recorded" \
            "$(in_both "$prev" "$now" | csv)" "$(csv <<<"$prev")"
        KILLED_SENT=$((KILLED_SENT + $(sent_in "$log")))
        prev="$now"
        if [[ "$kind" == download ]]; then
            assert_absent "$kind run $run: the target does not exist yet" "$dst"
            assert_present "$kind run $run: the partial file is there" "$(dirname "$dst")/.$(basename "$dst").tessera-partial"
        fi
    done
    log="$WORK/$kind-kill-final"
    cp_fg "$log" --concurrency 4 "$src" "$dst"
    assert_rc "$kind: the final rerun finishes" 0 "$log"
    local resumed sent
    resumed="$(field "$log" resumed_parts)" sent="$(field "$log" sent)"
    log "  final run: $(tail -n 1 "$log.out")"
    assert_ge "$kind final run: resumed_parts >= parts recorded at the last kill" "${resumed:-0}" "$(count_lines <<<"$prev")"
    assert_eq "$kind final run: the parts resumed are those recorded at the last kill" \
        "$(part_numbers "$log" resumed | csv)" "$(csv <<<"$prev")"
    assert_eq "$kind final run sent none of the parts recorded at the last kill" \
        "$(in_both "$prev" "$(part_numbers "$log" sent; part_numbers "$log" instant)" | csv)" ""
    assert_le "$kind final run: sent <= (25 - resumed_parts) x 8 MiB" "${sent:-999999999999}" $(((NPARTS - ${resumed:-0}) * PART))
    assert_eq "$kind final run: parts" "$(field "$log" parts)" "$NPARTS"
    assert_lt "$kind: bytes sent over all runs < size + 4 parts" $((KILLED_SENT + ${sent:-999999999999})) $((SIZE + 4 * PART))
    LAST_LOG="$log"
}

step "2. upload killed with SIGKILL after ~3, ~12 and ~20 parts recorded, rerun each time"
STEP_T=$SECONDS
BF="$WORK/b.bin"
make_random_file "$BF" 200
ETAG_B="$(multipart_etag "$BF" "$PART")"
kill_loop upload "$BF" "$B/kill/b.bin" recorded_upload
assert_eq "upload: the final run's ETag" "\"$(field "$LAST_LOG" etag)\"" "$ETAG_B"
# Fresh content: only a part the server acknowledged just before the last kill, too
# late to be recorded, can be instant now (at most --concurrency 2 of them).
assert_le "upload: the final run's instant parts are at most the 2 that were in flight" \
    "$(field "$LAST_LOG" instant_parts)" 2
assert_eq "no upload resume file left" "$(upload_files)" 0
if run_ok "head-object kill/b.bin (aws-cli)" s3api head-object --bucket "$TEST_BUCKET" --key kill/b.bin; then
    assert_eq "kill/b.bin: ETag is the multipart ETag" "$(jq -r .ETag <<<"$OUT")" "$ETAG_B"
fi
run_ok "aws s3 cp $B/kill/b.bin (download, aws-cli v2)" awss3 cp --only-show-errors "$B/kill/b.bin" "$DL/b-aws.bin" &&
    assert_same_sha1 "kill/b.bin read by aws-cli = b.bin" "$BF" "$DL/b-aws.bin"
rm -f "$DL/b-aws.bin"
elapsed

step "3. download killed with SIGKILL after ~3, ~12 and ~20 ranges recorded, rerun each time"
STEP_T=$SECONDS
T="$DL/b.bin"
kill_loop download "$B/kill/b.bin" "$T" recorded_download "$DL/.b.bin.tessera-download"
assert_same_sha1 "kill/b.bin downloaded through 3 kills = b.bin" "$BF" "$T"
assert_eq "download: the final run's etag" "\"$(field "$LAST_LOG" etag)\"" "$ETAG_B"
assert_absent "download: no .b.bin.tessera-partial left" "$DL/.b.bin.tessera-partial"
assert_absent "download: no .b.bin.tessera-download left" "$DL/.b.bin.tessera-download"
rm -f "$T"
elapsed

# ---------------------------------------------------------------------------
step "4. the server SIGKILLed during an upload: restarted at once, then kept down 10 s"
STEP_T=$SECONDS
if [[ $EXTERNAL -eq 1 ]]; then
    log "  external endpoint: no server to kill, skipped"
else
    CF="$WORK/c.bin"
    make_random_file "$CF" 200
    ETAG_C="$(multipart_etag "$CF" "$PART")"
    L1="$WORK/srv-1"
    cp_bg "$L1" --concurrency 2 "$CF" "$B/srv/c.bin"
    client="$CP_PID"
    rode_out=0 gave_up=0 at_kill1="" at_kill2=""
    if wait_recorded 6 "$client" recorded_upload; then
        { kill_server_hard; } 2>/dev/null
        sleep 0.2 # let an answer read just before the kill be recorded
        at_kill1="$(recorded_upload)"
        log "  server killed with $(count_lines <<<"$at_kill1") parts recorded: $(csv <<<"$at_kill1")"
        restart_server
    else
        fail "the client was still running with 6 parts recorded" "$(show_run "$L1")"
    fi
    if [[ -n "$at_kill1" ]]; then
        if wait_recorded 14 "$client" recorded_upload; then
            rode_out=1
            pass "the client rode out the restart (it went on to record 14 parts in the same run)"
            { kill_server_hard; } 2>/dev/null
            sleep 0.2
            at_kill2="$(recorded_upload)"
            log "  server killed again, kept down: $(count_lines <<<"$at_kill2") parts recorded: $(csv <<<"$at_kill2")"
            reap "$client" 20 # its retries last about 8 s
            if [[ $RC -ne 0 && $RC -ne 130 && $RC -ne 999 ]]; then
                pass "with the server down 8 s+ the client gives up (exit $RC)"
                gave_up=1
            else
                fail "with the server down the client gives up within 20 s" "exit $RC" "$(show_run "$L1")"
            fi
            restart_server
        else
            reap "$client" 5
            log "  the client did not ride out the restart (exit $RC)"
            gave_up=1
        fi
        if [[ $gave_up -eq 1 ]]; then
            assert_contains "the client's error says to run the same command again" "$(cat "$L1.err")" "run the same command again"
            kept="$(recorded_upload)"
            L2="$WORK/srv-2"
            cp_fg "$L2" --concurrency 4 "$CF" "$B/srv/c.bin"
            assert_rc "the rerun after the outage finishes" 0 "$L2"
            log "  rerun: $(tail -n 1 "$L2.out")"
            assert_eq "the rerun resumed exactly the parts recorded when the client gave up" \
                "$(part_numbers "$L2" resumed | csv)" "$(csv <<<"$kept")"
            r2="$(field "$L2" resumed_parts)" s2="$(field "$L2" sent)"
            assert_le "the rerun: sent <= (25 - resumed_parts) x 8 MiB" "${s2:-999999999999}" $(((NPARTS - ${r2:-0}) * PART))
            assert_eq "the rerun: ETag" "\"$(field "$L2" etag)\"" "$ETAG_C"
        else
            L2="$WORK/srv-none"
            : >"$L2.out"
        fi
        for at in "$at_kill1" "$at_kill2"; do
            [[ -n "$at" ]] || continue
            # Every part finished before a server kill is reported sent exactly once
            # over all the runs (never again after the restart).
            twice="$(cat "$L1.out" "$L2.out" | awk '$1 == "part" && $4 == "how=sent" { sub("n=", "", $2); print $2 }' |
                sort -n | uniq -c | awk '$1 > 1 { print $2 }')"
            assert_eq "parts finished before a server kill ($(count_lines <<<"$at")) were not sent again" \
                "$(in_both "$at" "$twice" | csv)" ""
        done
        total=$(($(sent_in "$L1") + $(sent_in "$L2")))
        assert_lt "bytes reported sent over the runs < size + 4 parts" "$total" $((SIZE + 4 * PART))
        assert_eq "no upload resume file left" "$(upload_files)" 0
        log "  outcome: rode out the quick restart: $rode_out, gave up on the long outage: $gave_up"
        L="$WORK/srv-down"
        cp_fg "$L" "$B/srv/c.bin" "$DL/c.bin"
        assert_rc "tessera cp $B/srv/c.bin FILE" 0 "$L"
        assert_same_sha1 "srv/c.bin uploaded across two server kills = c.bin" "$CF" "$DL/c.bin"
        assert_eq "srv/c.bin: ETag" "\"$(field "$L" etag)\"" "$ETAG_C"
        rm -f "$DL/c.bin"
    fi
fi
elapsed

# ---------------------------------------------------------------------------
step "5. the object replaced (same size, new content) while a download is paused by SIGINT"
STEP_T=$SECONDS
T="$DL/replaced.bin"
ST="$DL/.replaced.bin.tessera-download"
L="$WORK/repl-1"
cp_bg "$L" --concurrency 2 "$B/inst/first.bin" "$T"
if wait_recorded 5 "$CP_PID" recorded_download "$ST"; then
    kill -INT "$CP_PID"
    reap "$CP_PID" 20
    assert_rc "SIGINT pauses the download" 130 "$L"
else
    reap "$CP_PID" 5
    fail "the download was still running with 5 ranges recorded" "exit $RC" "$(show_run "$L")"
fi
assert_contains "paused download: stderr says to run the same command again" "$(cat "$L.err")" "run the same command again"
paused="$(recorded_download "$ST")"
log "  paused with $(count_lines <<<"$paused") ranges recorded"
assert_eq "paused download: every range reported fetched is recorded" "$(csv <<<"$paused")" "$(part_numbers "$L" sent | csv)"
assert_absent "paused download: the target does not exist" "$T"
assert_present "paused download: the partial file is kept" "$DL/.replaced.bin.tessera-partial"
L="$WORK/repl-put"
cp_fg "$L" "$BF" "$B/inst/first.bin"
assert_rc "replace inst/first.bin with b.bin's content (same size) by tessera cp" 0 "$L"
assert_eq "the replacement's ETag is b.bin's multipart ETag" "\"$(field "$L" etag)\"" "$ETAG_B"
if [[ "$ETAG_B" != "$ETAG_A" ]]; then pass "old and new objects: same size, different ETags"; else fail "old and new ETags differ" "both $ETAG_A"; fi
L="$WORK/repl-2"
cp_fg "$L" "$B/inst/first.bin" "$T"
assert_rc "the rerun of the paused download finishes" 0 "$L"
log "  rerun: $(tail -n 1 "$L.out")"
assert_eq "the rerun reports restarts=1" "$(field "$L" restarts)" 1
assert_eq "the rerun resumed nothing of the old object" "$(field "$L" resumed_parts)" 0
assert_eq "the rerun fetched the whole new object" "$(field "$L" sent)" "$SIZE"
assert_eq "the rerun's etag is the new object's" "\"$(field "$L" etag)\"" "$ETAG_B"
assert_contains "the rerun says the object changed" "$(cat "$L.err")" "changed"
assert_same_sha1 "the download is the new object (b.bin), not a mix" "$BF" "$T"
assert_absent "no .replaced.bin.tessera-partial left" "$DL/.replaced.bin.tessera-partial"
assert_absent "no .replaced.bin.tessera-download left" "$ST"
rm -f "$T"
elapsed

# ---------------------------------------------------------------------------
step "6. SIGINT (Ctrl-C) during an upload: exit 130, then the rerun sends the rest"
STEP_T=$SECONDS
FF="$WORK/f.bin"
make_random_file "$FF" 200
L="$WORK/int-1"
cp_bg "$L" --concurrency 2 "$FF" "$B/int/f.bin"
if wait_recorded 4 "$CP_PID" recorded_upload; then
    kill -INT "$CP_PID"
    reap "$CP_PID" 20
    assert_rc "SIGINT pauses the upload" 130 "$L"
else
    reap "$CP_PID" 5
    fail "the upload was still running with 4 parts recorded" "exit $RC" "$(show_run "$L")"
fi
assert_contains "paused upload: stderr says to run the same command again" "$(cat "$L.err")" "run the same command again"
paused="$(recorded_upload)"
np="$(count_lines <<<"$paused")"
log "  paused with $np parts recorded: $(csv <<<"$paused")"
assert_contains "paused upload: stderr gives the parts uploaded" "$(cat "$L.err")" "paused with $np of $NPARTS parts uploaded"
assert_eq "paused upload: the parts in flight finished and were recorded (recorded = reported sent)" \
    "$(csv <<<"$paused")" "$(part_numbers "$L" sent | csv)"
assert_eq "paused upload: one resume file" "$(upload_files)" 1
L="$WORK/int-2"
cp_fg "$L" --concurrency 4 "$FF" "$B/int/f.bin"
assert_rc "the rerun after Ctrl-C finishes" 0 "$L"
log "  rerun: $(tail -n 1 "$L.out")"
assert_eq "the rerun resumed exactly the recorded parts" "$(part_numbers "$L" resumed | csv)" "$(csv <<<"$paused")"
assert_eq "the rerun sent exactly the rest: sent = size - resumed x 8 MiB" "$(field "$L" sent)" $((SIZE - np * PART))
assert_eq "the rerun: ETag" "\"$(field "$L" etag)\"" "$(multipart_etag "$FF" "$PART")"
assert_eq "no upload resume file left" "$(upload_files)" 0
run_ok "aws s3 cp $B/int/f.bin (download, aws-cli v2)" awss3 cp --only-show-errors "$B/int/f.bin" "$DL/f-aws.bin" &&
    assert_same_sha1 "int/f.bin read by aws-cli = f.bin" "$FF" "$DL/f-aws.bin"
rm -f "$DL/f-aws.bin"
elapsed

log ""
log "cp-tessera: $((SECONDS - T0)) s"
scenario_end
