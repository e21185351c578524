package dataset

import "math"

var nan = math.NaN()

// streamHist is an exact fixed-width histogram built in one pass without
// knowing the range in advance. Bin width is a power of two and bins are
// aligned on multiples of it, so when a value falls outside the current
// bins the width doubles and neighbouring bins merge exactly. Memory is
// O(bins) whatever the number of values.
type streamHist struct {
	max    int     // maximum number of bins
	exp    int     // bin width is 2^exp
	start  int64   // index (in units of the width) of counts[0]
	counts []int64 // len max once started
	tmp    []int64
	first  float64 // while every value so far is equal
	nfirst int64
}

func newStreamHist(bins int) *streamHist {
	return &streamHist{max: max(bins, 2)}
}

func (h *streamHist) add(x float64) {
	if h.counts == nil {
		if h.nfirst == 0 || x == h.first {
			h.first = x
			h.nfirst++
			return
		}
		lo, hi := math.Min(x, h.first), math.Max(x, h.first)
		h.exp = h.fitExp(lo, hi, math.MinInt32)
		h.start = int64(math.Floor(math.Ldexp(lo, -h.exp)))
		h.counts = make([]int64, h.max)
		h.tmp = make([]int64, h.max)
		h.counts[h.index(h.first)] += h.nfirst
	}
	v := math.Floor(math.Ldexp(x, -h.exp))
	if v < float64(h.start) || v >= float64(h.start)+float64(h.max) {
		h.grow(x)
	}
	h.counts[h.index(x)]++
}

func (h *streamHist) index(x float64) int64 {
	return int64(math.Floor(math.Ldexp(x, -h.exp))) - h.start
}

// fitExp returns the smallest exponent >= minExp whose aligned bins cover
// [lo, hi] with at most h.max bins.
func (h *streamHist) fitExp(lo, hi float64, minExp int) int {
	_, e := math.Frexp(hi/2 - lo/2) // hi-lo < 2^(e+1)
	e = e + 1 - bitsBelow(h.max-1)
	if e < minExp {
		e = minExp
	}
	for math.Floor(math.Ldexp(hi, -e))-math.Floor(math.Ldexp(lo, -e)) >= float64(h.max) {
		e++
	}
	return e
}

func bitsBelow(n int) int { // floor(log2(n)) for n >= 1
	b := 0
	for n > 1 {
		n >>= 1
		b++
	}
	return b
}

func (h *streamHist) grow(x float64) {
	lo := math.Min(x, math.Ldexp(float64(h.start), h.exp))
	hi := math.Max(x, math.Ldexp(float64(h.start)+float64(h.max-1), h.exp))
	e := h.fitExp(lo, hi, h.exp+1)
	shift := uint(e - h.exp)
	newStart := int64(math.Floor(math.Ldexp(lo, -e)))
	clear(h.tmp)
	for j, c := range h.counts {
		if c == 0 {
			continue
		}
		idx := h.start + int64(j)
		var ni int64
		if shift >= 63 {
			if idx < 0 {
				ni = -1
			}
		} else {
			ni = idx >> shift
		}
		h.tmp[ni-newStart] += c
	}
	h.counts, h.tmp = h.tmp, h.counts
	h.exp, h.start = e, newStart
}

// edges returns the occupied bins: len(edges) == len(counts)+1. A
// histogram of equal values is the single bin [v, v].
func (h *streamHist) result() (edges []float64, counts []int64) {
	if h.counts == nil {
		if h.nfirst == 0 {
			return nil, nil
		}
		return []float64{h.first, h.first}, []int64{h.nfirst}
	}
	lo, hi := -1, -1
	for j, c := range h.counts {
		if c != 0 {
			if lo < 0 {
				lo = j
			}
			hi = j
		}
	}
	counts = append([]int64(nil), h.counts[lo:hi+1]...)
	edges = make([]float64, len(counts)+1)
	for k := range edges {
		edges[k] = math.Ldexp(float64(h.start+int64(lo+k)), h.exp)
	}
	return edges, counts
}
