package memorystore

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// latHist is a log-linear histogram of latencies in nanoseconds: 64
// buckets per power of two (1.5% resolution), plus the exact maximum. It
// allocates nothing per sample, so the probe does not disturb what it
// measures.
type latHist struct {
	counts [64 * 64]uint64
	n      uint64
	max    int64
}

func histBucket(ns int64) int {
	if ns < 64 {
		return int(max(ns, 0))
	}
	e := bits.Len64(uint64(ns)) - 7 // ns >> e has 7 bits: 64..127
	return (e+1)*64 + int(uint64(ns)>>e) - 64
}

func histValue(b int) int64 {
	if b < 64 {
		return int64(b)
	}
	e := b/64 - 1
	return int64(b%64+64+1) << e // the bucket's upper bound
}

func (h *latHist) add(ns int64) {
	h.counts[histBucket(ns)]++
	h.n++
	h.max = max(h.max, ns)
}

func (h *latHist) quantile(q float64) time.Duration {
	want := uint64(q * float64(h.n))
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen > want {
			return time.Duration(min(histValue(b), h.max))
		}
	}
	return time.Duration(h.max)
}

// lookupProbe calls Lookup in a loop on one goroutine, timing each call
// into the histogram current at the time.
type lookupProbe struct {
	cur  atomic.Pointer[latHist]
	stop atomic.Bool
	done sync.WaitGroup
}

func startProbe(s store.Store, hs []store.TokenHash) *lookupProbe {
	p := &lookupProbe{}
	p.cur.Store(new(latHist)) // a warm-up histogram, thrown away
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		ctx := context.Background()
		r := rand.New(rand.NewPCG(1, 2))
		for !p.stop.Load() {
			h := hs[r.IntN(len(hs))]
			t0 := time.Now()
			_, err := s.Lookup(ctx, h)
			d := time.Since(t0)
			if err != nil && err != store.ErrNotFound {
				panic(err)
			}
			p.cur.Load().add(int64(d))
		}
	}()
	return p
}

// measure runs step with the probe recording into a fresh histogram and
// returns it with the wall time step took.
func (p *lookupProbe) measure(step func()) (*latHist, time.Duration) {
	h := new(latHist)
	p.cur.Store(h)
	t0 := time.Now()
	step()
	d := time.Since(t0)
	p.cur.Store(new(latHist))
	time.Sleep(time.Millisecond) // let the probe leave h
	return h, d
}

func (p *lookupProbe) close() { p.stop.Store(true); p.done.Wait() }

// probeStep is one housekeeping step of the table.
type probeStep struct {
	name string
	// run performs the step once; it is repeated until minWindow has
	// passed when it is shorter (Count, say), so that the window holds
	// enough look-ups for a p99.9.
	run    func()
	repeat bool
}

// probeRow is the measured result of one step over every round.
type probeRow struct {
	name       string
	runs       int
	took       time.Duration // total time the step ran, over all rounds
	rounds     []probeRound
	roundLines []string
}

// probeRound is one round of a step: the look-ups during the step and
// during the idle interval after it.
type probeRound struct{ step, idle *latHist }

const minWindow = 250 * time.Millisecond

// runProbe measures each step rounds times, each time followed by an idle
// interval of the same length, with look-ups running throughout.
func runProbe(b *testing.B, s store.Store, hs []store.TokenHash, steps []probeStep, rounds int) []probeRow {
	p := startProbe(s, hs)
	defer p.close()
	time.Sleep(200 * time.Millisecond) // warm up
	rows := make([]probeRow, len(steps))
	for range rounds {
		for i, st := range steps {
			row := &rows[i]
			row.name = st.name
			h, d := p.measure(func() {
				t0 := time.Now()
				for {
					st.run()
					row.runs++
					if !st.repeat || time.Since(t0) >= minWindow {
						return
					}
				}
			})
			row.took += d
			idle, _ := p.measure(func() { time.Sleep(d) })
			row.rounds = append(row.rounds, probeRound{h, idle})
			line := fmt.Sprintf("%-70s %9s  look-ups %8d / idle %8d  p99.9 %9s / idle %9s  max %9s / idle %9s",
				st.name, fmtDur(d), h.n, idle.n, fmtDur(h.quantile(0.999)), fmtDur(idle.quantile(0.999)),
				fmtDur(time.Duration(h.max)), fmtDur(time.Duration(idle.max)))
			row.roundLines = append(row.roundLines, line)
			b.Log(line)
		}
	}
	return rows
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	}
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// probeTable renders the rows as a Markdown table (every round's line
// after it), written to the file named by $PROBE_OUT when set. Per step:
// the look-ups completed during the step and during as long an idle
// interval (a Lookup that waits on a lock shows here first: the count
// collapses), the median over rounds of each round's p99.9, and the
// longest Lookup of all rounds.
func probeTable(b *testing.B, title string, rows []probeRow) {
	var w strings.Builder
	fmt.Fprintf(&w, "%s\n\n", title)
	fmt.Fprintf(&w, "| step | one run takes | look-ups during / idle | p99.9 during / idle (median of rounds) | max during / idle |\n")
	fmt.Fprintf(&w, "| --- | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		var p, pi []time.Duration
		var n, ni uint64
		var mx, mxi int64
		for _, rd := range r.rounds {
			p, pi = append(p, rd.step.quantile(0.999)), append(pi, rd.idle.quantile(0.999))
			n, ni = n+rd.step.n, ni+rd.idle.n
			mx, mxi = max(mx, rd.step.max), max(mxi, rd.idle.max)
		}
		fmt.Fprintf(&w, "| %s | %s | %d / %d | %s / %s (%.2fx) | %s / %s |\n", r.name, fmtDur(r.took/time.Duration(max(r.runs, 1))),
			n, ni, fmtDur(median(p)), fmtDur(median(pi)), float64(median(p))/float64(median(pi)),
			fmtDur(time.Duration(mx)), fmtDur(time.Duration(mxi)))
	}
	fmt.Fprintf(&w, "\nEvery round:\n\n```\n")
	for _, r := range rows {
		for _, l := range r.roundLines {
			fmt.Fprintln(&w, l)
		}
	}
	fmt.Fprintf(&w, "```\n")
	b.Log("\n" + w.String())
	if f := os.Getenv("PROBE_OUT"); f != "" {
		os.WriteFile(f, []byte(w.String()), 0o644)
	}
}

// spinStep is the control row: the other core busy for the window with no
// store call at all. On a shared machine a busy neighbour alone moves the
// probe's tail; this row shows by how much.
var spinStep = probeStep{name: "control: the other core busy, no store call", run: func() {
	x := 0
	for t0 := time.Now(); time.Since(t0) < minWindow; {
		for i := range 10000 {
			x += i
		}
	}
	spinSink.Store(int64(x))
}}

var spinSink atomic.Int64

// probeRounds is $PROBE_ROUNDS, 3 by default.
func probeRounds() int {
	if n, err := strconv.Atoi(os.Getenv("PROBE_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// probeHashes is a sample of the hashes of fillMemory's sessions.
func probeHashes(n int) []store.TokenHash {
	hs := make([]store.TokenHash, 1<<16)
	for i := range hs {
		hs[i] = storetest.SeqHash(i * (n / len(hs)))
	}
	return hs
}
