package dataset

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"a,b,target\n1,x,0\n2,,1\n",
		"a\nNA\nNaN\n\n",
		"x,y\n1,2\n3\n",
		"\xEF\xBB\xBFq\n\"a,\nb\"\n",
		"a,a\n1,1\n",
		"v\n1e400\n-inf\n0x1p-3\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, rerr := Read(bytes.NewReader(data), ReadOptions{})
		ps, perr := Profile(bytes.NewReader(data), StatsOptions{HistogramBins: 8})
		if (rerr == nil) != (perr == nil) {
			t.Fatalf("Read err %v, Profile err %v", rerr, perr)
		}
		if rerr != nil {
			if !errors.Is(rerr, ErrInvalidCSV) || !errors.Is(perr, ErrInvalidCSV) {
				t.Fatalf("error outside the ErrInvalidCSV family: %v / %v", rerr, perr)
			}
			return
		}
		if int64(fr.NumRows()) != ps.Rows || fr.NumCols() != len(ps.Columns) {
			t.Fatalf("shape mismatch: %d×%d vs %d×%d", fr.NumRows(), fr.NumCols(), ps.Rows, len(ps.Columns))
		}
		fs := fr.Stats(StatsOptions{HistogramBins: 8})
		for j := range fs.Columns {
			a, b := fs.Columns[j], ps.Columns[j]
			if a.Kind != b.Kind || a.Count != b.Count || a.Missing != b.Missing {
				t.Fatalf("column %d: frame %v profile %v", j, a, b)
			}
		}
	})
}
