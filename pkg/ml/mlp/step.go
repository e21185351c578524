package mlp

import "math"

// trainStep runs forward and backward passes on the batch already copied
// into ws.acts[0] (rows rows; idx their indices, for the targets) and
// applies one optimizer update. It returns the batch's mean loss and
// allocates nothing.
func (t *Trainer) trainStep(rows int, idx []int, lr float32) float64 {
	net := t.Net
	ws := &t.ws
	yb := ws.grad[1][:rows*t.yw] // free until the backward pass
	for r, i := range idx {
		copy(yb[r*t.yw:(r+1)*t.yw], t.y[i*t.yw:(i+1)*t.yw])
	}
	net.forward(net.Params, ws, rows)
	last := len(net.Sizes) - 1
	g := ws.grad[0][:rows*net.Sizes[last]]
	loss := t.outputLoss(ws, rows, yb, g)

	clear(t.grads)
	for l := last - 1; l >= 0; l-- {
		in, out := net.Sizes[l], net.Sizes[l+1]
		dw, db := net.layer(t.grads, l)
		gemmTN(rows, out, in, ws.acts[l][:rows*in], g, dw)
		for r := range rows {
			gr := g[r*out : (r+1)*out]
			gr = gr[:len(db)]
			for j, v := range gr {
				db[j] += v
			}
		}
		if l == 0 {
			break
		}
		w, _ := net.layer(net.Params, l)
		prev := ws.grad[1][:rows*in]
		if &g[0] == &ws.grad[1][0] {
			prev = ws.grad[0][:rows*in]
		}
		gemmNT(rows, out, in, g, w, prev)
		activationGrad(net.Activation, ws.pre[l][:rows*in], ws.acts[l][:rows*in], prev)
		g = prev
	}
	t.update(lr)
	return loss
}

// outputLoss computes the mean loss of the batch's logits in
// ws.acts[last] against y and, when g is not nil, the gradient of the mean
// loss with respect to the logits.
func (t *Trainer) outputLoss(ws *workspace, rows int, y, g []float32) float64 {
	net := t.Net
	k := net.Sizes[len(net.Sizes)-1]
	z := ws.acts[len(net.Sizes)-1][:rows*k]
	inv := 1 / float32(rows)
	var loss float64
	switch net.Output {
	case Identity:
		y = y[:len(z)]
		scale := 2 / float32(rows*k)
		for i, v := range z {
			d := v - y[i]
			loss += float64(d * d)
			if g != nil {
				g[i] = scale * d
			}
		}
		return loss / float64(rows*k)
	case SigmoidOutput:
		y = y[:len(z)]
		for i, v := range z {
			// BCE with logits: max(z,0) - z*y + log(1+exp(-|z|))
			zf, yf := float64(v), float64(y[i])
			loss += math.Max(zf, 0) - zf*yf + math.Log1p(math.Exp(-math.Abs(zf)))
			if g != nil {
				g[i] = (sigmoid32(v) - y[i]) * inv
			}
		}
	case Softmax:
		for r := range rows {
			zr := z[r*k : (r+1)*k]
			m := zr[0]
			for _, v := range zr {
				m = max(m, v)
			}
			var s float64
			for _, v := range zr {
				s += math.Exp(float64(v - m))
			}
			lse := float64(m) + math.Log(s)
			c := int(y[r])
			loss += lse - float64(zr[c])
			if g != nil {
				gr := g[r*k : (r+1)*k]
				for j, v := range zr {
					gr[j] = float32(math.Exp(float64(v)-lse)) * inv
				}
				gr[c] -= inv
			}
		}
	}
	return loss / float64(rows)
}

// update applies one optimizer step with the gradients in t.grads.
func (t *Trainer) update(lr float32) {
	p, g, m := t.Net.Params, t.grads, t.m
	g, m = g[:len(p)], m[:len(p)]
	wd := float32(t.cfg.WeightDecay)
	t.step++
	if t.cfg.Optimizer == "adam" {
		b1, b2, eps := float32(t.cfg.Beta1), float32(t.cfg.Beta2), float32(t.cfg.Eps)
		c1 := float32(1 - math.Pow(t.cfg.Beta1, float64(t.step)))
		c2 := float32(math.Sqrt(1 - math.Pow(t.cfg.Beta2, float64(t.step))))
		stepSize := lr / c1
		v := t.v[:len(p)]
		for i, gi := range g {
			gi += wd * p[i]
			mi := b1*m[i] + (1-b1)*gi
			vi := b2*v[i] + (1-b2)*gi*gi
			m[i], v[i] = mi, vi
			p[i] -= stepSize * mi / (sqrt32(vi)/c2 + eps)
		}
		return
	}
	mu := float32(t.cfg.Momentum)
	for i, gi := range g {
		gi += wd * p[i]
		b := mu*m[i] + gi
		m[i] = b
		p[i] -= lr * b
	}
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
