package audit

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"
)

// UTF8BOM starts CSV files so that Excel reads Japanese text as UTF-8.
const UTF8BOM = "\uFEFF"

// displayTime is how people see times: local to loc, to the second.
func displayTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("2006-01-02 15:04:05")
}

// RecordColumns are the CSV and table columns of query output.
var RecordColumns = []string{"seq", "time", "event", "request_id", "user", "roles", "device", "cert_fp", "amr",
	"auth_time", "ip", "zone", "route", "class", "segment", "method", "host", "path", "decision", "enforced",
	"rule", "reasons", "status", "bytes", "duration_ms", "action", "target", "detail"}

// RecordRow is r as strings in [RecordColumns] order, times in loc.
func RecordRow(r *Record, loc *time.Location) []string {
	return []string{
		strconv.FormatUint(r.Seq, 10), r.Time.In(loc).Format("2006-01-02T15:04:05.000000Z07:00"), r.Event, r.RequestID, r.User,
		strings.Join(r.Roles, " "), r.Device, r.CertFP, strings.Join(r.AMR, " "), formatOptTime(r.AuthTime, loc),
		r.IP, r.Zone, r.Route, r.Class, r.Segment, r.Method, r.Host, r.Path, r.Decision, strconv.FormatBool(r.Enforced),
		r.Rule, strings.Join(r.Reasons, " "), strconv.Itoa(r.Status), strconv.FormatInt(r.Bytes, 10),
		strconv.FormatFloat(r.DurationMS, 'f', 3, 64), r.Action, r.Target, r.Detail,
	}
}

func formatOptTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("2006-01-02T15:04:05Z07:00")
}

// NewCSVWriter writes the UTF-8 BOM and returns a CSV writer with CRLF line
// ends, as Excel expects.
func NewCSVWriter(w io.Writer) (*csv.Writer, error) {
	if _, err := io.WriteString(w, UTF8BOM); err != nil {
		return nil, err
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	return cw, nil
}

// WriteMarkdown renders the report as Markdown (Japanese first, English alongside).
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	loc := r.Options.OfficeHours.Location
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	p("# 監査レポート / Audit report\n\n")
	p("- 期間 / Period: %s 〜 %s (%s)\n", displayTime(r.Options.Since, loc), displayTime(r.Options.Until, loc), loc)
	if r.Options.User != "" {
		p("- 利用者 / User: %s\n", mdCell(r.Options.User))
	}
	if r.Options.Device != "" {
		p("- 端末 / Device: %s\n", mdCell(r.Options.Device))
	}
	p("- 作成 / Generated: %s\n", displayTime(r.Generated, loc))
	p("- 記録数 / Records: %d、要求数 / Requests (distinct request_id): %d\n", r.Records, r.Requests)
	if r.Unreadable > 0 {
		p("- **読めない行 / Unreadable lines: %d** — `sekisho audit verify` で確認してください (run verify)\n", r.Unreadable)
	}
	p("\n")
	countsTable := func(title, keyName string, rows []Counts) {
		p("## %s\n\n| %s | 許可 allow | 拒否 deny | 追加認証 stepup | エラー error | 計 total |\n|---|---:|---:|---:|---:|---:|\n", title, keyName)
		for _, c := range rows {
			p("| %s | %d | %d | %d | %d | %d |\n", mdCell(c.Key), c.Allow, c.Deny, c.StepUp, c.Error, c.Total)
		}
		p("\n")
	}
	countsTable("判定の概要 / Decisions", "", []Counts{{Key: "計 / total", Allow: r.Total.Allow, Deny: r.Total.Deny, StepUp: r.Total.StepUp, Error: r.Total.Error, Total: r.Total.Total}})
	countsTable("機密性分類別 / By asset class", "分類 class", r.ByClass)
	countsTable("接続元ゾーン別 / By source zone", "ゾーン zone", r.ByZone)
	var hours []Counts
	for _, c := range r.ByHour {
		if c.Total > 0 {
			hours = append(hours, c)
		}
	}
	countsTable(fmt.Sprintf("時間帯別 (%s) / By hour", loc), "時 hour", hours)
	keyTable := func(title, keyName string, rows []KeyCount) {
		p("## %s\n\n", title)
		if len(rows) == 0 {
			p("該当なし / None\n\n")
			return
		}
		p("| %s | 件数 count |\n|---|---:|\n", keyName)
		for _, k := range rows {
			p("| %s | %d |\n", mdCell(k.Key), k.N)
		}
		p("\n")
	}
	keyTable("拒否の理由 / Denial reasons", "理由 reason", r.DenyReasons)
	entries := func(title string, rows []Entry) {
		p("## %s\n\n", title)
		if len(rows) == 0 {
			p("該当なし / None\n\n")
			return
		}
		p("| 日時 time | 利用者 user | 端末 device | 接続元 zone (ip) | ルート route | 分類 class | 要求 request | 判定 decision | 理由 reasons | request_id |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, e := range rows {
			decision := e.Decision
			if e.Decision != "" && !e.Enforced {
				decision += " (shadow)"
			}
			what := strings.TrimSpace(e.Method + " " + e.Path)
			if e.Event != EventAccess {
				what = strings.TrimSpace(e.Event + " " + e.Action)
			}
			p("| %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s |\n", displayTime(e.Time, loc), mdCell(e.User), mdCell(e.Device),
				mdCell(e.Zone), mdCell(e.IP), mdCell(e.Route), mdCell(e.Class), mdCell(what), mdCell(decision),
				mdCell(strings.Join(e.Reasons, ", ")), mdCell(e.RequestID))
		}
		p("\n")
	}
	entries("拒否された要求 / Denied requests", r.Denials)
	keyTable("シャドーモードで拒否となる要求（ルート別） / Shadow-mode would-denies per route", "ルート route", r.ShadowWouldDeny)
	entries(fmt.Sprintf("勤務時間外の %s へのアクセス / Off-hours access to %s (%s)", strings.Join(r.Options.SensitiveClasses, "・"),
		strings.Join(r.Options.SensitiveClasses, ", "), officeHoursText(r.Options.OfficeHours)), r.OffHours)
	entries("失効した端末・無効化された利用者による試行 / Revoked devices and disabled users that still tried", r.RevokedTried)
	p("## パスキー未登録の職員 / Staff without a passkey\n\n")
	switch {
	case !r.StaffWithoutPasskeyKnown:
		p("利用者ストアに接続していないため集計していません（`--config` を指定してください）。 / Not computed: needs the user store.\n\n")
	case len(r.StaffWithoutPasskey) == 0:
		p("該当なし / None\n\n")
	default:
		for _, u := range r.StaffWithoutPasskey {
			p("- %s\n", mdCell(u))
		}
		p("\n")
	}
	if r.Options.User != "" || r.Options.Device != "" {
		entries("時系列 / Incident timeline", r.Timeline)
	}
	if len(r.Truncated) > 0 {
		p("> 一覧は %d 行で打ち切っています / Listings cut at %d rows: %s\n", r.Options.MaxRows, r.Options.MaxRows, strings.Join(r.Truncated, ", "))
	}
	return bw.Flush()
}

func officeHoursText(o OfficeHours) string {
	hm := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return fmt.Sprintf("%s–%s %s", hm(o.Start), hm(o.End), o.Location)
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "\r", " ")
}

// WriteCSV renders the report as CSV sections (UTF-8 with BOM, for Excel).
func (r *Report) WriteCSV(w io.Writer) error {
	cw, err := NewCSVWriter(w)
	if err != nil {
		return err
	}
	loc := r.Options.OfficeHours.Location
	row := func(cells ...string) { _ = cw.Write(cells) }
	counts := func(section string, rows []Counts) {
		row("section", "key", "allow", "deny", "stepup", "error", "total")
		for _, c := range rows {
			row(section, c.Key, strconv.Itoa(c.Allow), strconv.Itoa(c.Deny), strconv.Itoa(c.StepUp), strconv.Itoa(c.Error), strconv.Itoa(c.Total))
		}
		row()
	}
	row("監査レポート / Audit report", displayTime(r.Options.Since, loc), displayTime(r.Options.Until, loc), loc.String())
	row()
	total := r.Total
	total.Key = "total"
	counts("decisions", []Counts{total})
	counts("class", r.ByClass)
	counts("zone", r.ByZone)
	counts("hour", r.ByHour[:])
	keys := func(section string, rows []KeyCount) {
		row("section", "key", "count")
		for _, k := range rows {
			row(section, k.Key, strconv.Itoa(k.N))
		}
		row()
	}
	keys("deny_reason", r.DenyReasons)
	keys("shadow_would_deny", r.ShadowWouldDeny)
	entries := func(section string, rows []Entry) {
		row("section", "time", "user", "device", "ip", "zone", "route", "class", "method", "path", "decision", "enforced", "reasons", "request_id", "event", "action")
		for _, e := range rows {
			row(section, displayTime(e.Time, loc), e.User, e.Device, e.IP, e.Zone, e.Route, e.Class, e.Method, e.Path,
				e.Decision, strconv.FormatBool(e.Enforced), strings.Join(e.Reasons, " "), e.RequestID, e.Event, e.Action)
		}
		row()
	}
	entries("denial", r.Denials)
	entries("off_hours", r.OffHours)
	entries("revoked_tried", r.RevokedTried)
	if r.Options.User != "" || r.Options.Device != "" {
		entries("timeline", r.Timeline)
	}
	if r.StaffWithoutPasskeyKnown {
		row("section", "user")
		for _, u := range r.StaffWithoutPasskey {
			row("staff_without_passkey", u)
		}
	}
	cw.Flush()
	return cw.Error()
}

var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{
	"t":    func(t time.Time, loc *time.Location) string { return displayTime(t, loc) },
	"join": strings.Join,
	"hours": func(h [24]Counts) []Counts {
		var out []Counts
		for _, c := range h {
			if c.Total > 0 {
				out = append(out, c)
			}
		}
		return out
	},
	"ohours": officeHoursText,
	"list": func(c Counts) []Counts {
		c.Key = "計 / total"
		return []Counts{c}
	},
	"entries": func(e []Entry, loc *time.Location) any {
		return struct {
			E   []Entry
			Loc *time.Location
		}{e, loc}
	},
}).Parse(`<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><title>監査レポート / Audit report</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}th,td{border:1px solid #999;padding:.2em .5em}td.n{text-align:right}</style></head>
<body>
{{- $loc := .Options.OfficeHours.Location}}
<h1>監査レポート / Audit report</h1>
<ul>
<li>期間 / Period: {{t .Options.Since $loc}} 〜 {{t .Options.Until $loc}} ({{$loc}})</li>
{{with .Options.User}}<li>利用者 / User: {{.}}</li>{{end}}
{{with .Options.Device}}<li>端末 / Device: {{.}}</li>{{end}}
<li>記録数 / Records: {{.Records}}、要求数 / Requests: {{.Requests}}</li>
{{if .Unreadable}}<li><strong>読めない行 / Unreadable lines: {{.Unreadable}}</strong></li>{{end}}
</ul>
{{define "counts"}}<table><tr><th></th><th>許可 allow</th><th>拒否 deny</th><th>追加認証 stepup</th><th>エラー error</th><th>計 total</th></tr>
{{range .}}<tr><td>{{.Key}}</td><td class="n">{{.Allow}}</td><td class="n">{{.Deny}}</td><td class="n">{{.StepUp}}</td><td class="n">{{.Error}}</td><td class="n">{{.Total}}</td></tr>
{{end}}</table>{{end}}
{{define "keys"}}{{if .}}<table><tr><th></th><th>件数 count</th></tr>{{range .}}<tr><td>{{.Key}}</td><td class="n">{{.N}}</td></tr>{{end}}</table>{{else}}<p>該当なし / None</p>{{end}}{{end}}
{{define "entries"}}{{if .E}}<table><tr><th>日時 time</th><th>利用者 user</th><th>端末 device</th><th>接続元 zone (ip)</th><th>ルート route</th><th>分類 class</th><th>要求 request</th><th>判定 decision</th><th>理由 reasons</th><th>request_id</th></tr>
{{range .E}}<tr><td>{{t .Time $.Loc}}</td><td>{{.User}}</td><td>{{.Device}}</td><td>{{.Zone}} ({{.IP}})</td><td>{{.Route}}</td><td>{{.Class}}</td><td>{{if eq .Event "access"}}{{.Method}} {{.Path}}{{else}}{{.Event}} {{.Action}}{{end}}</td><td>{{.Decision}}{{if not .Enforced}} (shadow){{end}}</td><td>{{join .Reasons ", "}}</td><td>{{.RequestID}}</td></tr>
{{end}}</table>{{else}}<p>該当なし / None</p>{{end}}{{end}}
<h2>判定の概要 / Decisions</h2>{{template "counts" (list .Total)}}
<h2>機密性分類別 / By asset class</h2>{{template "counts" .ByClass}}
<h2>接続元ゾーン別 / By source zone</h2>{{template "counts" .ByZone}}
<h2>時間帯別 ({{$loc}}) / By hour</h2>{{template "counts" (hours .ByHour)}}
<h2>拒否の理由 / Denial reasons</h2>{{template "keys" .DenyReasons}}
<h2>拒否された要求 / Denied requests</h2>{{template "entries" (entries .Denials $loc)}}
<h2>シャドーモードで拒否となる要求 / Shadow-mode would-denies per route</h2>{{template "keys" .ShadowWouldDeny}}
<h2>勤務時間外の {{join .Options.SensitiveClasses "・"}} へのアクセス / Off-hours access ({{ohours .Options.OfficeHours}})</h2>{{template "entries" (entries .OffHours $loc)}}
<h2>失効した端末・無効化された利用者による試行 / Revoked devices and disabled users that still tried</h2>{{template "entries" (entries .RevokedTried $loc)}}
<h2>パスキー未登録の職員 / Staff without a passkey</h2>
{{if not .StaffWithoutPasskeyKnown}}<p>利用者ストアに接続していないため集計していません。 / Not computed: needs the user store.</p>{{else if .StaffWithoutPasskey}}<ul>{{range .StaffWithoutPasskey}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>該当なし / None</p>{{end}}
{{if or .Options.User .Options.Device}}<h2>時系列 / Incident timeline</h2>{{template "entries" (entries .Timeline $loc)}}{{end}}
{{if .Truncated}}<p>一覧は {{.Options.MaxRows}} 行で打ち切っています / Listings cut: {{join .Truncated ", "}}</p>{{end}}
</body></html>
`))

// WriteHTML renders the report as a self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	return reportHTML.Execute(w, r)
}
