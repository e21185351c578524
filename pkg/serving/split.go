package serving

// A batch's rows are independent, so a worker with a batch hands shares
// of its rows to the workers that are idle at that moment and computes
// the rest itself: a batch uses every core instead of one, and each row's
// output is the one it would get alone. Nothing is allocated per batch.

// partRows is the fewest rows worth a share of their own (the MLP's
// register blocks take four rows at a time).
const partRows = 4

// part is a share of a batch's rows computed by another worker.
type part struct {
	x    []float64
	rows int
	out  []float64
	err  error
	done chan struct{}
}

func (p *part) run(be backend) {
	p.err = be.Predict(p.x, p.rows, p.out)
	p.done <- struct{}{}
}

// newParts is one worker's shares, reused for every batch it computes.
func newParts(workers int) []part {
	parts := make([]part, max(workers, 1))
	for i := range parts {
		parts[i].done = make(chan struct{}, 1)
	}
	return parts
}

// split predicts rows of x into out, sharing them with idle workers.
func (b *batcher) split(parts []part, x []float64, rows int, out []float64) error {
	n := min(len(parts), rows/partRows)
	if n <= 1 {
		return b.be.Predict(x, rows, out)
	}
	f, k := b.be.Features(), b.be.Outputs()
	per := (rows + n - 1) / n
	per = (per + partRows - 1) / partRows * partRows
	// Queue every share but the first for whichever worker is idle first,
	// compute the first, then the shares nobody has taken yet.
	sent, start := parts[:0], per
	for start < rows {
		m := min(per, rows-start)
		p := &parts[len(sent)]
		p.x, p.rows, p.out, p.err = x[start*f:(start+m)*f], m, out[start*k:(start+m)*k], nil
		b.help <- p // never blocks: room for every worker's shares
		sent = parts[:len(sent)+1]
		start += m
	}
	err := b.be.Predict(x[:per*f], per, out[:per*k])
	for {
		select {
		case p := <-b.help:
			p.run(b.be)
			continue
		default:
		}
		break
	}
	for i := range sent {
		<-sent[i].done
		if sent[i].err != nil && err == nil {
			err = sent[i].err
		}
		sent[i].x, sent[i].out = nil, nil
	}
	return err
}
