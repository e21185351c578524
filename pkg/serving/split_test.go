package serving

import (
	"sync"
	"testing"
	"time"
)

// rowSum is a backend whose outputs for a row depend on that row alone.
type rowSum struct{}

func (rowSum) Features() int { return 3 }
func (rowSum) Outputs() int  { return 2 }
func (rowSum) close()        {}
func (rowSum) Predict(x []float64, rows int, out []float64) error {
	for r := range rows {
		s := x[3*r] + 2*x[3*r+1] + 3*x[3*r+2]
		out[2*r], out[2*r+1] = s, -s
	}
	return nil
}

func TestSplitBatchesGiveEveryRowItsOwnOutput(t *testing.T) {
	b := newBatcher(rowSum{}, Batching{MaxBatchSize: 32, MaxQueueDelay: time.Millisecond, Workers: 4})
	defer b.close()
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				rows := 1 + (g+i)%13
				x, out := make([]float64, rows*3), make([]float64, rows*2)
				for j := range x {
					x[j] = float64(g*1000 + i*10 + j)
				}
				if err := b.predict(t.Context(), x, rows, out); err != nil {
					t.Error(err)
					return
				}
				want := make([]float64, rows*2)
				_ = rowSum{}.Predict(x, rows, want)
				for j := range want {
					if out[j] != want[j] {
						t.Errorf("rows %d: got %v, want %v", rows, out, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestSplitAllocatesNothing(t *testing.T) {
	b := newBatcher(rowSum{}, Batching{MaxBatchSize: 64, Workers: 3})
	defer b.close()
	parts := newParts(3)
	x, out := make([]float64, 30*3), make([]float64, 30*2)
	if n := testing.AllocsPerRun(200, func() {
		if err := b.split(parts, x, 30, out); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per split", n)
	}
}
