package gbdt

// growTree is a Tree under construction with the bin of each split.
type growTree struct {
	Tree
	split []uint8
}

func (t *growTree) predictBinned(bins []uint8, n, row int) float64 {
	i := int32(0)
	for t.Left[i] >= 0 {
		if bins[int(t.Feature[i])*n+row] <= t.split[i] {
			i = t.Left[i]
		} else {
			i = t.Right[i]
		}
	}
	return t.Value[i]
}

func (t *growTree) addNode(value float64) int32 {
	t.Feature = append(t.Feature, -1)
	t.Threshold = append(t.Threshold, 0)
	t.Left = append(t.Left, -1)
	t.Right = append(t.Right, -1)
	t.Value = append(t.Value, value)
	t.split = append(t.split, 0)
	return int32(len(t.Value) - 1)
}

type candidate struct {
	node     int32
	rows     []int32
	g, h     float64
	depth    int
	feature  int
	bin      int
	gain     float64
	gl, hl   float64
	hasSplit bool
}

// grow builds one tree on the sampled rows with the current gradients.
func (b *Booster) grow() *growTree {
	cfg := b.cfg
	maxLeaves := cfg.MaxLeaves
	if maxLeaves <= 0 {
		maxLeaves = 1 << min(max(cfg.MaxDepth, 1), 20)
	}
	t := &growTree{}
	root := &candidate{rows: b.rows}
	for _, r := range b.rows {
		root.g += b.g[r]
		root.h += b.h[r]
	}
	root.node = t.addNode(b.leafValue(root.g, root.h))
	b.findSplit(root)
	open := []*candidate{root}
	leaves := 1
	for leaves < maxLeaves {
		bi := -1
		for i, c := range open {
			if c.hasSplit && (bi < 0 || c.gain > open[bi].gain) {
				bi = i
			}
		}
		if bi < 0 {
			break
		}
		c := open[bi]
		open = append(open[:bi], open[bi+1:]...)
		left := &candidate{depth: c.depth + 1, g: c.gl, h: c.hl}
		right := &candidate{depth: c.depth + 1, g: c.g - c.gl, h: c.h - c.hl}
		col := b.bins[c.feature*b.n : (c.feature+1)*b.n]
		for _, r := range c.rows {
			if int(col[r]) <= c.bin {
				left.rows = append(left.rows, r)
			} else {
				right.rows = append(right.rows, r)
			}
		}
		left.node = t.addNode(b.leafValue(left.g, left.h))
		right.node = t.addNode(b.leafValue(right.g, right.h))
		t.Feature[c.node] = int32(c.feature)
		t.Threshold[c.node] = b.binner.edges[c.feature][c.bin]
		t.split[c.node] = uint8(c.bin)
		t.Left[c.node], t.Right[c.node] = left.node, right.node
		t.Value[c.node] = 0
		leaves++
		for _, ch := range []*candidate{left, right} {
			b.findSplit(ch)
			open = append(open, ch)
		}
	}
	return t
}

func (b *Booster) leafValue(g, h float64) float64 {
	return -g / (h + b.cfg.Lambda) * b.cfg.LearningRate
}

// findSplit finds the best split of a candidate leaf from histograms of
// its rows' gradients.
func (b *Booster) findSplit(c *candidate) {
	cfg := b.cfg
	c.hasSplit = false
	if (cfg.MaxDepth > 0 && c.depth >= cfg.MaxDepth) || len(c.rows) < 2 {
		return
	}
	var hg, hh [256]float64
	parent := c.g * c.g / (c.h + cfg.Lambda)
	for _, j := range b.features {
		nb := len(b.binner.edges[j]) + 1
		if nb < 2 {
			continue
		}
		clear(hg[:nb])
		clear(hh[:nb])
		col := b.bins[j*b.n : (j+1)*b.n]
		for _, r := range c.rows {
			bin := col[r]
			hg[bin] += b.g[r]
			hh[bin] += b.h[r]
		}
		var gl, hl float64
		for s := 0; s+1 < nb; s++ {
			gl += hg[s]
			hl += hh[s]
			gr, hr := c.g-gl, c.h-hl
			if hl < cfg.MinChildWeight || hr < cfg.MinChildWeight || hl <= 0 || hr <= 0 {
				continue
			}
			gain := gl*gl/(hl+cfg.Lambda) + gr*gr/(hr+cfg.Lambda) - parent
			if gain > 1e-12 && (!c.hasSplit || gain > c.gain) {
				c.hasSplit, c.gain, c.feature, c.bin, c.gl, c.hl = true, gain, j, s, gl, hl
			}
		}
	}
}
