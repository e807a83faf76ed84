package admin

import (
	"net/http"
	"net/url"
	"strconv"
)

// pageSize is how many rows a list page shows; a city's whole staff
// (tens of thousands) is paged, not rendered at once.
const pageSize = 100

// pager is one page of a long list, for the "pager" template.
type pager struct {
	Page, Pages int
	// Total rows of the list (after the filter); From and To are the
	// 1-based rows shown.
	Total, From, To  int
	PrevURL, NextURL string
}

// paginate picks the rows of the page the request asks for (?page=N,
// 1-based; out of range: the nearest page) among total rows. path and q
// build the links to the neighbouring pages. It returns the half-open
// range of rows to show.
func paginate(r *http.Request, path, q string, total int) (lo, hi int, p pager) {
	p.Total = total
	p.Pages = max(1, (total+pageSize-1)/pageSize)
	p.Page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	p.Page = min(max(p.Page, 1), p.Pages)
	lo = (p.Page - 1) * pageSize
	hi = min(lo+pageSize, total)
	if total > 0 {
		p.From, p.To = lo+1, hi
	}
	link := func(page int) string {
		v := url.Values{"page": {strconv.Itoa(page)}}
		if q != "" {
			v.Set("q", q)
		}
		return Prefix + path + "?" + v.Encode()
	}
	if p.Page > 1 {
		p.PrevURL = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.NextURL = link(p.Page + 1)
	}
	return lo, hi, p
}
