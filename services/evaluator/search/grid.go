package search

import (
	"maps"
	"math"
)

// points are the grid values of p, without repeats.
func (p Param) points() []string {
	if p.Type == Categorical {
		return p.Values
	}
	n := p.GridPoints
	if n <= 0 {
		n = 3
	}
	n = min(n, MaxGridPoints)
	out := make([]string, 0, n)
	seen := make(map[string]bool, n)
	for i := range n {
		t := float64(i) / float64(max(n-1, 1))
		x := p.Low + t*(p.High-p.Low)
		if p.Type == LogUniform {
			x = math.Exp(math.Log(p.Low) + t*(math.Log(p.High)-math.Log(p.Low)))
		}
		if v := p.format(x); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Grid returns the first limit configurations of the grid, the last
// parameter varying fastest; an inactive conditional parameter adds no
// points. The work is proportional to limit times the number of
// parameters, however large the whole grid is.
func (s Space) Grid(limit int) []map[string]string {
	var out []map[string]string
	s.walkGrid(limit, func(c map[string]string) { out = append(out, maps.Clone(c)) })
	return out
}

// gridSize counts the grid's configurations, up to limit.
func (s Space) gridSize(limit int) int { return s.walkGrid(limit, nil) }

// walkGrid visits the grid's configurations in order, depth first, and
// stops after limit of them; it returns how many it visited. Every
// parameter has at least one point, so every branch ends in a
// configuration and the walk does at most limit·len(s) steps.
func (s Space) walkGrid(limit int, visit func(map[string]string)) int {
	points := make([][]string, len(s))
	allowed := make([]map[string]bool, len(s))
	for i, p := range s {
		points[i] = p.points()
		if p.Parent != "" {
			allowed[i] = setOf(p.ParentValues)
		}
	}
	chosen := make(map[string]string, len(s))
	n := 0
	var walk func(i int)
	walk = func(i int) {
		if n >= limit {
			return
		}
		if i == len(s) {
			n++
			if visit != nil {
				visit(chosen)
			}
			return
		}
		p := s[i]
		if p.Parent != "" {
			if v, ok := chosen[p.Parent]; !ok || !allowed[i][v] {
				walk(i + 1)
				return
			}
		}
		for _, v := range points[i] {
			if n >= limit {
				break
			}
			chosen[p.Name] = v
			walk(i + 1)
		}
		delete(chosen, p.Name)
	}
	walk(0)
	return n
}
