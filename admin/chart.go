package admin

import (
	"strconv"
)

// Charts are drawn on the server as inline SVG: the geometry is computed
// here and the templates only place rectangles and text, so the console
// needs no script and no chart library. Colours come from the stylesheet
// (classes seg-allow, seg-deny, …).

// segment is one coloured part of a bar.
type segment struct {
	X, Y, W, H int
	Class      string
	Title      string // shown as a tooltip (<title>)
}

// barRow is one labelled bar of a horizontal chart.
type barRow struct {
	Label      string
	LabelX     int
	TextY      int
	Segments   []segment
	Value      string
	ValueX     int
	Href       string
	labelWidth int
}

// hchart is a horizontal (stacked) bar chart.
type hchart struct {
	Width, Height int
	Title         string
	Rows          []barRow
	Legend        []legendItem
	Empty         bool
}

type legendItem struct {
	X, Y  int
	Class string
	Label string
	TextX int
}

// part is one value of a stacked bar.
type part struct {
	Class string
	Label string
	N     int
}

const (
	chartLabelW = 150
	chartBarW   = 420
	chartRowH   = 26
	chartValueW = 70
)

// newHChart lays out rows of stacked parts, scaled to the largest total.
// legend names the classes in order (nil: no legend).
func newHChart(title string, labels []string, hrefs []string, rows [][]part, legend []part) hchart {
	ch := hchart{Width: chartLabelW + chartBarW + chartValueW, Title: title}
	max := 0
	for _, r := range rows {
		t := 0
		for _, p := range r {
			t += p.N
		}
		max = maxInt(max, t)
	}
	y := 4
	if len(legend) > 0 {
		x := chartLabelW
		for _, l := range legend {
			ch.Legend = append(ch.Legend, legendItem{X: x, Y: y, Class: l.Class, Label: l.Label, TextX: x + 16})
			x += 16 + 14*runeWidth(l.Label)/2 + 24
		}
		y += 24
	}
	for i, r := range rows {
		row := barRow{Label: labels[i], LabelX: chartLabelW - 8, TextY: y + 17}
		if i < len(hrefs) {
			row.Href = hrefs[i]
		}
		x, total := chartLabelW, 0
		for _, p := range r {
			total += p.N
			if p.N == 0 || max == 0 {
				continue
			}
			w := p.N * chartBarW / max
			if w < 2 {
				w = 2
			}
			row.Segments = append(row.Segments, segment{X: x, Y: y + 3, W: w, H: chartRowH - 6, Class: p.Class,
				Title: p.Label + ": " + strconv.Itoa(p.N)})
			x += w
		}
		row.Value = strconv.Itoa(total)
		row.ValueX = x + 6
		ch.Rows = append(ch.Rows, row)
		y += chartRowH
	}
	ch.Height = y + 4
	ch.Empty = max == 0
	return ch
}

// vchart is a vertical stacked bar chart (one bar per hour of the day).
type vchart struct {
	Width, Height int
	Title         string
	Bars          []vbar
	AxisY         int
	Empty         bool
	MaxLabel      string
}

type vbar struct {
	Segments []segment
	Label    string
	LabelX   int
	ShowTick bool
}

const (
	vchartH    = 160
	vchartBarW = 22
	vchartGap  = 4
)

// newVChart lays out one stacked bar per label.
func newVChart(title string, labels []string, bars [][]part) vchart {
	ch := vchart{Title: title, Width: len(labels)*(vchartBarW+vchartGap) + 40, Height: vchartH + 40, AxisY: vchartH + 10}
	max := 0
	for _, b := range bars {
		t := 0
		for _, p := range b {
			t += p.N
		}
		max = maxInt(max, t)
	}
	ch.Empty = max == 0
	ch.MaxLabel = strconv.Itoa(max)
	for i, b := range bars {
		x := 30 + i*(vchartBarW+vchartGap)
		vb := vbar{Label: labels[i], LabelX: x + vchartBarW/2, ShowTick: i%3 == 0}
		y := ch.AxisY
		for _, p := range b {
			if p.N == 0 || max == 0 {
				continue
			}
			h := p.N * vchartH / max
			if h < 2 {
				h = 2
			}
			y -= h
			vb.Segments = append(vb.Segments, segment{X: x, Y: y, W: vchartBarW, H: h, Class: p.Class,
				Title: labels[i] + " " + p.Label + ": " + strconv.Itoa(p.N)})
		}
		ch.Bars = append(ch.Bars, vb)
	}
	return ch
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// runeWidth approximates a label's width in half-width cells (CJK counts 2).
func runeWidth(s string) int {
	n := 0
	for _, r := range s {
		if r < 0x1100 {
			n++
		} else {
			n += 2
		}
	}
	return n
}
