// Times Porcupine on the set `riptide check --bench` times, the same way: every file of
// ../shared/histories/porcupine parsed and checked one at a time, one untimed warm-up round,
// then ROUNDS timed rounds, the median of the round totals. benches/porcupine.sh copies this
// file into a copy of a Porcupine checkout (package porcupine), so that it can use Porcupine's
// own parsers and models from porcupine_test.go. Every verdict is compared with expected.tsv.
package porcupine

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

type setFile struct {
	path     string
	jepsen   bool
	expected bool
}

func readSet(t *testing.T, dir string) []setFile {
	f, err := os.Open(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		t.Fatalf("cannot read the set's expected.tsv: %v", err)
	}
	defer f.Close()
	var files []setFile
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		cols := strings.Split(lines.Text(), "\t")
		if len(cols) < 4 || cols[0] == "file" {
			continue
		}
		files = append(files, setFile{
			path:     filepath.Join(dir, cols[0]),
			jepsen:   strings.HasPrefix(cols[0], "jepsen/"),
			expected: cols[3] == "linearizable",
		})
	}
	return files
}

func median(xs []time.Duration) time.Duration {
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)/2]
}

func TestRiptideSetTiming(t *testing.T) {
	dir := os.Getenv("RIPTIDE_SET")
	if dir == "" {
		t.Skip("RIPTIDE_SET (the folder with expected.tsv) is not set")
	}
	rounds, _ := strconv.Atoi(os.Getenv("ROUNDS"))
	if rounds < 1 {
		rounds = 5
	}
	files := readSet(t, dir)
	var totals, checks []time.Duration
	perFile := make([][]time.Duration, len(files))
	for round := 0; round <= rounds; round++ {
		var total, check time.Duration
		for i, file := range files {
			start := time.Now()
			var events []Event
			model := kvModel
			if file.jepsen {
				events = parseJepsenLog(file.path)
				model = etcdModel
			} else {
				events = parseKvLog(file.path)
			}
			parsed := time.Now()
			ok := CheckEvents(model, events)
			done := time.Now()
			if ok != file.expected {
				t.Fatalf("%s: Porcupine says %t, expected.tsv %t", file.path, ok, file.expected)
			}
			total += done.Sub(start)
			if round > 0 {
				perFile[i] = append(perFile[i], done.Sub(start))
			}
			check += done.Sub(parsed)
		}
		if round > 0 {
			totals = append(totals, total)
			checks = append(checks, check)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	if os.Getenv("PER_FILE") != "" {
		order := make([]int, len(files))
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool { return median(perFile[order[a]]) > median(perFile[order[b]]) })
		for _, i := range order[:8] {
			fmt.Printf("  %10.3f ms  %s\n", ms(median(perFile[i])), files[i].path)
		}
	}
	fmt.Printf("porcupine: %d files, %d rounds, parse+check median %.3f ms, check only median %.3f ms\n",
		len(files), rounds, ms(median(totals)), ms(median(checks)))
}
