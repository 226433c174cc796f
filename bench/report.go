package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets.
const (
	targetPostRatio   = 0.6
	targetP99         = 20 * time.Millisecond
	targetP99Rate     = 200
	targetSlowChange  = 0.10
	targetBytesPerCal = 4 << 10
	targetLiveCalls   = 10000
	targetCPUPerCall  = 2 * time.Millisecond
	targetBurstDrain  = 30 * time.Second
)

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func passText(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func targets(r *Report) []Target {
	o := r.Options
	var ts []Target
	ts = append(ts, Target{
		Name: "throughput", Goal: fmt.Sprintf("deliveries/s >= %.1f x plain POSTs, every event durable", targetPostRatio),
		Got: fmt.Sprintf("%.2f x outbox to receiver (%.0f vs %.0f/s); end to end from ARI frames %.2f x",
			r.DeliveryVsPost, r.Delivery.PerSec, r.Post.PerSec, r.DeliveriesVsPost),
		Pass: r.DeliveryVsPost >= targetPostRatio, Applies: true,
	})
	ts = append(ts, Target{
		Name: "latency", Goal: fmt.Sprintf("p99 hangup->POST < %s at %d calls/s", targetP99, targetP99Rate),
		Got:  fmt.Sprintf("p99 %s at %s", ms(r.Load.P99), rateText(o.Rate)),
		Pass: r.Load.P99 > 0 && r.Load.P99 < targetP99, Applies: o.Rate >= targetP99Rate,
		Note: fmt.Sprintf("stated for --rate %d", targetP99Rate),
	})
	slow := Target{Name: "slow hook", Goal: fmt.Sprintf("fast hook's p99 moves < %.0f%%", targetSlowChange*100),
		Applies: r.Slow != nil, Note: "needs --slow-hook"}
	if r.Slow != nil {
		slow.Got = fmt.Sprintf("%+.0f%% (p99 %s -> %s)", r.SlowP99Change*100, ms(r.Load.P99), ms(r.Slow.P99))
		slow.Pass = r.SlowP99Change < targetSlowChange
	}
	ts = append(ts, slow)
	mem := Target{Name: "memory", Goal: fmt.Sprintf("<= %d KiB per live call at %d calls", targetBytesPerCal>>10, targetLiveCalls),
		Applies: r.Memory != nil && r.Memory.Calls >= targetLiveCalls, Note: fmt.Sprintf("stated for --concurrent %d", targetLiveCalls)}
	if r.Memory != nil {
		mem.Got = fmt.Sprintf("%s (kanca's state, %d calls)", bytesText(r.Memory.TrackerPerCall), r.Memory.Calls)
		mem.Pass = r.Memory.TrackerPerCall <= targetBytesPerCal
		if r.Memory.Calls < targetLiveCalls {
			mem.Note = fmt.Sprintf("measured at %d, stated for %d", r.Memory.Calls, targetLiveCalls)
		}
	} else {
		mem.Note = "needs --concurrent"
	}
	ts = append(ts, mem)
	return ts
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func bytesText(b float64) string {
	if b >= 1<<20 || b <= -(1<<20) {
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	}
	if b >= 1<<10 || b <= -(1<<10) {
		return fmt.Sprintf("%.2f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// Print writes the report as tables.
func (r *Report) Print(w io.Writer) {
	o := r.Options
	if r.NATS != nil {
		printNATS(w, o, r.NATS)
		return
	}
	if c := r.CPU; c != nil {
		fmt.Fprintf(w, "kanca bench --cpu: %s\n", c.Binary)
		fmt.Fprintf(w, "  %d calls, %d ARI frames, %d deliveries at %s, one JSON hook per public number\n",
			c.Calls, c.Frames, c.Deliveries, rateText(o.Rate))
		fmt.Fprintf(w, "  kanca process CPU: %.2fs, %.2f ms per call\n", c.CPU.Seconds(), msf(c.PerCall))
		if c.Switches > 0 {
			fmt.Fprintf(w, "  of it in the kernel: %.0f%%; the process waited %.0f times per call (voluntary context switches)\n",
				100*c.System.Seconds()/c.CPU.Seconds(), float64(c.Switches)/float64(c.Calls))
		}
		if c.MaxRSS > 0 {
			fmt.Fprintf(w, "  kanca process peak memory (RSS): %s\n", bytesText(float64(c.MaxRSS)))
		}
		if c.Commits > 0 {
			fmt.Fprintf(w, "  outbox transactions: %d, %.1f per call\n", c.Commits, float64(c.Commits)/float64(c.Calls))
		}
		fmt.Fprintf(w, "  bare decode of the same frames (ari.Decode, every frame): %.2f ms per call\n", msf(c.DecodePerCall))
		if c.DecodePerCall > 0 {
			fmt.Fprintf(w, "  ratio: %.2f x the bare decode\n", float64(c.PerCall)/float64(c.DecodePerCall))
		}
		if c.ReadPerCall > 0 {
			fmt.Fprintf(w, "  bare reader of the same frames at the same pace (a process that reads the socket and discards): %.2f ms per call; kanca %.2f x it\n",
				msf(c.ReadPerCall), float64(c.PerCall)/float64(c.ReadPerCall))
		}
		fmt.Fprintf(w, "  target <= %.0f ms per call: %s\n", msf(targetCPUPerCall), passText(c.PerCall <= targetCPUPerCall))
		return
	}
	if b := r.Burst; b != nil {
		fmt.Fprintf(w, "kanca bench --slow-burst: %s\n", b.Binary)
		fmt.Fprintf(w, "  %d calls at once, %d deliveries, the receiver answering each in %s\n", b.Calls, b.Deliveries, b.Delay)
		fmt.Fprintf(w, "  drained %.1fs after the burst's last hangup; hangup to POST p50 %.1fs, p99 %.1fs\n",
			b.Drained.Seconds(), b.P50.Seconds(), b.P99.Seconds())
		fmt.Fprintf(w, "  target < %s: %s\n", targetBurstDrain, passText(b.Drained < targetBurstDrain))
		return
	}
	kinds := make([]string, 0, len(r.Mix))
	for k := range r.Mix {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	mix := make([]string, len(kinds))
	for i, k := range kinds {
		mix[i] = fmt.Sprintf("%s %d", k, r.Mix[k])
	}
	fmt.Fprintf(w, "kanca bench: %d calls at %s (call timelines x%g), mix: %s\n\n",
		r.Load.Calls, rateText(o.Rate), o.Speedup, strings.Join(mix, ", "))

	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tkanca\tbaseline\tkanca/baseline\t")
	l := r.Load
	fmt.Fprintf(tw, "calls/s (to the hangup frame)\t%.0f\t\t\t\n", l.CallsPerSec)
	fmt.Fprintf(tw, "deliveries/s vs plain POSTs (%d workers)\t%.0f\t%.0f\t%.2f\t\n", r.Post.Concurrency, l.DeliveriesPerSec, r.Post.PerSec, r.DeliveriesVsPost)
	fmt.Fprintf(tw, "  delivery stage alone: outbox to receiver\t%.0f\t%.0f\t%.2f\t\n", r.Delivery.PerSec, r.Post.PerSec, r.DeliveryVsPost)
	fmt.Fprintf(tw, "  decoding and tracking ARI frames alone, one core\t%.0f\t\t\t\n", r.Delivery.TrackPerSec)
	fmt.Fprintf(tw, "outbox rows/s vs plain inserts (%d/tx)\t%.0f\t%.0f\t%.2f\t\n", r.SQLite.Concurrency, l.RowsPerSec, r.SQLite.PerSec, r.RowsVsSQLite)
	fmt.Fprintf(tw, "hangup->POST p50 / p95 / p99 / max\t%s / %s / %s / %s\t\t\t\n", ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max))
	if s := r.Slow; s != nil {
		fmt.Fprintf(tw, "  with a %s hook beside each: p50 / p95 / p99\t%s / %s / %s\t\t%+.0f%% p99\t\n", o.SlowDelay, ms(s.P50), ms(s.P95), ms(s.P99), r.SlowP99Change*100)
	}
	fmt.Fprintf(tw, "delivered / expected (duplicates)\t%d / %d (%d)\t\t\t\n", l.Delivered, l.Expected, l.Duplicates)
	fmt.Fprintf(tw, "frames sent, events per group commit\t%d, %.1f\t\t\t\n", l.Frames, l.MeanBatch)
	fmt.Fprintf(tw, "outbox pending, max (one a second)\t%d\t\t\t\n", l.MaxDepth)
	fmt.Fprintf(tw, "peak resident memory\t%s\t\t\t\n", bytesText(float64(l.PeakRSS)))
	if m := r.Memory; m != nil {
		fmt.Fprintf(tw, "per live call at %d calls: kanca's state\t%s\t\t\t\n", m.Calls, bytesText(m.TrackerPerCall))
		fmt.Fprintf(tw, "  whole process (with the fake Asterisk)\t%s\t\t\t\n", bytesText(m.ProcessPerCall))
		fmt.Fprintf(tw, "  resident memory with them live\t%s\t\t\t\n", bytesText(float64(m.RSS)))
	}
	tw.Flush()
	fmt.Fprintf(w, "\noutbox pending by second: %s\n\n", depthText(l.DepthSamples))

	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tgoal\tmeasured\tresult")
	for _, t := range r.Targets {
		res := "MISS"
		if t.Pass {
			res = "PASS"
		}
		if !t.Applies {
			res += " (n/a: " + t.Note + ")"
		}
		got := t.Got
		if got == "" {
			got = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Goal, got, res)
	}
	tw.Flush()
}

func depthText(d []int) string {
	if len(d) == 0 {
		return "(run shorter than a second)"
	}
	const most = 30
	parts := make([]string, 0, min(len(d), most))
	for i, v := range d {
		if i == most {
			parts = append(parts, fmt.Sprintf("... (%d more)", len(d)-most))
			break
		}
		parts = append(parts, fmt.Sprint(v))
	}
	return strings.Join(parts, " ")
}
