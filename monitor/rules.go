package monitor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// Bounds on the rules' memory: past them new keys are not tracked (and
// logged once), so a flood of distinct addresses cannot exhaust memory.
const (
	maxKeys        = 200_000
	maxEvidence    = 20
	maxDevices     = 32
	maxZones       = 16
	maxPathsPerHr  = 20_000
	revokedMemory  = 30 * 24 * time.Hour
	personIdleDrop = 90 * 24 * time.Hour
)

// Reasons (audit record "reasons") that mean a revoked or disabled
// subject is still trying. user_disabled is what authn emits; the others
// are accepted for gateways that name the revocation (see
// docs/monitoring.md).
var revokedReasons = []string{"user_disabled", "device_revoked", "user_revoked", "session_revoked", "revoked"}

// state is what the rules remember. Only the Run goroutine touches it.
type state struct {
	windows  map[groupKey]*window // recent events per rule and subject
	usage    map[string]*usage    // user → sensitive reading this hour
	persons  map[string]*person   // user → known devices and zones
	revoked  map[subjectKey]time.Time
	groups   map[groupKey]*group
	overflow bool
}

func newState() *state {
	return &state{
		windows: map[groupKey]*window{},
		usage:   map[string]*usage{},
		persons: map[string]*person{},
		revoked: map[subjectKey]time.Time{},
		groups:  map[groupKey]*group{},
	}
}

// groupKey names a rule and its subject.
type groupKey struct{ rule, kind, subject string }

// subjectKey names a user or a device.
type subjectKey struct{ kind, id string }

// window is a sliding count of events: their times and evidence ids,
// oldest first, at most the rule's threshold.
type window struct {
	times []time.Time
	ids   []string
}

// add records an event at t and returns how many fall within d of t.
func (w *window) add(t time.Time, id string, d time.Duration, keep int) int {
	w.times = append(w.times, t)
	w.ids = append(w.ids, id)
	i := 0
	for i < len(w.times) && t.Sub(w.times[i]) > d {
		i++
	}
	if over := len(w.times) - i - keep; over > 0 {
		i += over
	}
	if i > 0 {
		w.times = append(w.times[:0], w.times[i:]...)
		w.ids = append(w.ids[:0], w.ids[i:]...)
	}
	return len(w.times)
}

type usage struct {
	hour  int64 // hours since the Unix epoch
	paths map[uint64]struct{}
	fired bool
	ewma  float64
	hours int // active hours folded into ewma
	last  time.Time
}

type person struct {
	first   time.Time
	last    time.Time
	lastReq string // request id of the user's latest record
	devices []string
	zones   []string
}

func evidenceOf(r *audit.Record) string {
	if r.RequestID != "" {
		return r.RequestID
	}
	if r.Seq > 0 {
		return "seq:" + strconv.FormatUint(r.Seq, 10)
	}
	return ""
}

func isDenied(r *audit.Record) bool {
	if r.Decision != audit.DecisionDeny && r.Decision != audit.DecisionError {
		return false
	}
	if !r.Enforced {
		return false // shadow mode: the person was not refused
	}
	// The redirect to the login page before a session exists is routine.
	return !slices.Contains(r.Reasons, "not_authenticated")
}

// process runs every rule over one record. With learn set it only updates
// what the rules remember.
func (m *Monitor) process(r *audit.Record, learn bool) {
	t := r.Time
	if t.IsZero() {
		t = m.opts.now()
	}
	ev := evidenceOf(r)
	// A class with synchronous audit writes two records per request (the
	// decision, then the outcome) with one request id: count it once.
	var dup bool
	if p := m.st.persons[r.User]; p != nil && r.User != "" && r.RequestID != "" {
		dup = p.lastReq == r.RequestID
	}
	switch r.Event {
	case audit.EventAccess, audit.EventAdmin:
		if dup {
			return
		}
		if isDenied(r) {
			m.burst(config.RuleDenialBurst, r, t, ev, learn)
		}
		if r.Event == audit.EventAdmin && r.Decision != audit.DecisionError {
			m.adminAction(r, t)
		}
		if m.set.sensitive[r.Class] && r.Decision == audit.DecisionAllow && r.User != "" {
			m.bulkRead(r, t, ev, learn)
			m.offHours(r, t, ev, learn)
		}
	case audit.EventAuthn:
		switch {
		case r.Action == "counter_regression" || slices.Contains(r.Reasons, "counter_regression") || slices.Contains(r.Reasons, "clone_warning"):
			m.counterRegression(r, t, ev, learn)
		case r.Action == "login_failure":
			m.burst(config.RuleLoginFailureBurst, r, t, ev, learn)
		}
	case audit.EventSystem:
		if r.Action == audit.ActionWriteFailed {
			m.fire(learn, config.RuleAuditFailure, KindComponent, "audit", t, []string{ev}, func() (string, string) {
				return "監査証跡の書き込みが失敗していました（復旧済み）: " + r.Detail,
					"Writing the audit trail failed (recovered since): " + r.Detail
			})
		}
		return
	default:
		return
	}
	if r.User != "" || r.Device != "" {
		m.revokedAccess(r, t, ev, learn)
	}
	if r.User != "" && r.Event != audit.EventAdmin {
		m.identity(r, t, ev, learn)
	}
}

// burst counts denials or login failures per user, device and address.
func (m *Monitor) burst(name string, r *audit.Record, t time.Time, ev string, learn bool) {
	rl := m.set.rules[name]
	if !rl.on {
		return
	}
	what, whatEN := "拒否", "denials"
	if name == config.RuleLoginFailureBurst {
		what, whatEN = "ログイン失敗", "login failures"
	}
	// Every subject counts, but one record raises at most one alert: the
	// user's, else the device's, else the address's. A device or address
	// alert then means many identities (or none) behind it.
	fired := false
	for _, s := range []struct {
		kind, subject string
		threshold     int
	}{{KindUser, r.User, rl.threshold}, {KindDevice, r.Device, rl.threshold}, {KindIP, r.IP, rl.ipThreshold}} {
		if s.subject == "" || s.threshold <= 0 {
			continue
		}
		key := groupKey{name, s.kind, s.subject}
		w := m.st.windows[key]
		if w == nil {
			if !m.track(len(m.st.windows)) {
				continue
			}
			w = &window{}
			m.st.windows[key] = w
		}
		n := w.add(t, ev, rl.window, s.threshold)
		if n >= s.threshold && !fired {
			fired = true
			m.fire(learn, name, s.kind, s.subject, t, w.ids, func() (string, string) {
				return fmt.Sprintf("%s %s で %s以内に%sが %d 回以上ありました（最新: %s %s）", kindJA(s.kind), s.subject, durJA(rl.window), what, s.threshold, r.Route, firstOr(r.Reasons, r.Action)),
					fmt.Sprintf("%d or more %s within %s for %s %s (latest: %s %s)", s.threshold, whatEN, durEN(rl.window), s.kind, s.subject, r.Route, firstOr(r.Reasons, r.Action))
			})
		}
	}
}

// track reports whether a new key may be added to a map of size n.
func (m *Monitor) track(n int) bool {
	if n < maxKeys {
		return true
	}
	if !m.st.overflow {
		m.st.overflow = true
		m.log.Warn("monitor: too many subjects tracked; new ones are ignored until old ones expire", "limit", maxKeys)
	}
	return false
}

// bulkRead counts the distinct paths of sensitive classes a user reads per
// hour and compares them with a ceiling and the user's own baseline.
func (m *Monitor) bulkRead(r *audit.Record, t time.Time, ev string, learn bool) {
	rl := m.set.rules[config.RuleBulkRead]
	if !rl.on {
		return
	}
	u := m.st.usage[r.User]
	if u == nil {
		if !m.track(len(m.st.usage)) {
			return
		}
		u = &usage{paths: map[uint64]struct{}{}, hour: t.Unix() / 3600}
		m.st.usage[r.User] = u
	}
	if h := t.Unix() / 3600; h != u.hour {
		u.fold()
		u.hour = h
	}
	u.last = t
	if len(u.paths) < maxPathsPerHr {
		u.paths[pathKey(r.Route, r.Path)] = struct{}{}
	}
	n := len(u.paths)
	overCeiling := rl.ceiling > 0 && n > rl.ceiling
	overBaseline := u.hours >= baselineHours && n >= rl.threshold && float64(n) > rl.factor*u.ewma
	if !overCeiling && !overBaseline {
		return
	}
	if !learn {
		u.fired = true
	}
	ewma := u.ewma
	m.fire(learn, config.RuleBulkRead, KindUser, r.User, t, []string{ev}, func() (string, string) {
		why := fmt.Sprintf("普段（平均 %.0f 件/時）の %.0f 倍を超えました", ewma, rl.factor)
		whyEN := fmt.Sprintf("more than %.0f× the usual %.0f per hour", rl.factor, ewma)
		if overCeiling {
			why, whyEN = fmt.Sprintf("上限 %d 件を超えました", rl.ceiling), fmt.Sprintf("above the ceiling of %d", rl.ceiling)
		}
		return fmt.Sprintf("利用者 %s が 1 時間に機密性%s の %d 件の異なるページを参照しました（%s）。住民情報の大量持ち出しの可能性があります", r.User, r.Class, n, why),
			fmt.Sprintf("User %s read %d distinct pages of class %s within an hour (%s): possible bulk export", r.User, n, r.Class, whyEN)
	})
}

// fold closes the current hour into the baseline. An hour that raised
// bulk_read is left out, so an export does not become the new normal.
func (u *usage) fold() {
	if n := len(u.paths); n > 0 && !u.fired {
		if u.hours == 0 {
			u.ewma = float64(n)
		} else {
			u.ewma = ewmaAlpha*float64(n) + (1-ewmaAlpha)*u.ewma
		}
		u.hours++
	}
	clear(u.paths)
	u.fired = false
}

// pathKey is FNV-1a over route and path, without allocating.
func pathKey(route, path string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(route); i++ {
		h ^= uint64(route[i])
		h *= 1099511628211
	}
	h ^= 0
	h *= 1099511628211
	for i := 0; i < len(path); i++ {
		h ^= uint64(path[i])
		h *= 1099511628211
	}
	return h
}

func (m *Monitor) offHours(r *audit.Record, t time.Time, ev string, learn bool) {
	rl := m.set.rules[config.RuleOffHours]
	if !rl.on {
		return
	}
	ok, holiday := m.set.officeTime(t)
	if ok {
		return
	}
	m.fire(learn, config.RuleOffHours, KindUser, r.User, t, []string{ev}, func() (string, string) {
		lt := t.In(m.set.loc)
		when, whenEN := "勤務時間外", "outside office hours"
		if holiday != "" {
			when, whenEN = "閉庁日（"+holiday+"）", "on a closed day ("+holiday+")"
		} else if !m.set.days[lt.Weekday()] {
			when, whenEN = "休日", "on a day off"
		}
		at := lt.Format("2006-01-02 15:04")
		return fmt.Sprintf("利用者 %s が%s（%s）に機密性%s のシステム %s にアクセスしました", r.User, when, at, r.Class, r.Route),
			fmt.Sprintf("User %s reached %s (class %s) %s, at %s", r.User, r.Route, r.Class, whenEN, at)
	})
}

// adminAction remembers revocations and re-enablements made by IT staff.
func (m *Monitor) adminAction(r *audit.Record, t time.Time) {
	switch r.Action {
	case "revoke_user", "user_disable":
		m.st.revoked[subjectKey{KindUser, r.Target}] = t
	case "revoke_device":
		m.st.revoked[subjectKey{KindDevice, r.Target}] = t
	case "user_enable":
		delete(m.st.revoked, subjectKey{KindUser, r.Target})
	case "device_enable":
		delete(m.st.revoked, subjectKey{KindDevice, r.Target})
	}
}

func (m *Monitor) revokedAccess(r *audit.Record, t time.Time, ev string, learn bool) {
	rl := m.set.rules[config.RuleRevokedAccess]
	if !rl.on {
		return
	}
	kind, subject := KindUser, r.User
	if subject == "" {
		kind, subject = KindDevice, r.Device
	}
	var why string
	for _, reason := range r.Reasons {
		if slices.Contains(revokedReasons, reason) {
			why = reason
			break
		}
	}
	if why == "" && r.Event != audit.EventAdmin {
		for _, k := range [2]subjectKey{{KindUser, r.User}, {KindDevice, r.Device}} {
			if k.id == "" || len(m.st.revoked) == 0 {
				continue
			}
			if at, ok := m.st.revoked[k]; ok && t.Sub(at) > revokeGrace {
				kind, subject, why = k.kind, k.id, "revoked at "+at.UTC().Format(time.RFC3339)
				break
			}
		}
	}
	if why == "" {
		return
	}
	m.fire(learn, config.RuleRevokedAccess, kind, subject, t, []string{ev}, func() (string, string) {
		return fmt.Sprintf("利用停止・失効済みの%s %s が利用を試みています（%s %s %s、理由 %s）", kindJA(kind), subject, r.Event, r.Route, r.IP, why),
			fmt.Sprintf("Revoked or disabled %s %s is still trying (%s %s from %s, %s)", kind, subject, r.Event, r.Route, r.IP, why)
	})
}

func (m *Monitor) counterRegression(r *audit.Record, t time.Time, ev string, learn bool) {
	kind, subject := KindUser, r.User
	if subject == "" {
		kind, subject = KindDevice, cmpOr(r.Target, r.IP) // the credential id when the user is unknown
	}
	m.fire(learn, config.RuleCounterRegression, kind, subject, t, []string{ev}, func() (string, string) {
		return fmt.Sprintf("利用者 %s のパスキーの署名カウンタが戻りました（複製された認証器の可能性）。IP %s", subject, r.IP),
			fmt.Sprintf("The signature counter of a passkey of %s went backwards (possible cloned authenticator), from %s", subject, r.IP)
	})
}

// identity learns the devices and zones of each user and reports new ones
// once the user is past the learning period.
func (m *Monitor) identity(r *audit.Record, t time.Time, ev string, learn bool) {
	p := m.st.persons[r.User]
	if p == nil {
		if !m.track(len(m.st.persons)) {
			return
		}
		p = &person{first: t}
		m.st.persons[r.User] = p
	}
	if t.Before(p.first) {
		p.first = t // learned from older records after the fact
	}
	p.last = t
	p.lastReq = r.RequestID
	learning := learn || t.Sub(p.first) < m.set.learnPeriod
	if r.Device != "" && !slices.Contains(p.devices, r.Device) {
		if len(p.devices) < maxDevices {
			p.devices = append(p.devices, r.Device)
		}
		if m.set.rules[config.RuleNewDevice].on {
			m.fire(learning, config.RuleNewDevice, KindUser, r.User, t, []string{ev}, func() (string, string) {
				return fmt.Sprintf("利用者 %s がこれまで使っていない端末 %s から接続しました（%s）", r.User, r.Device, r.IP),
					fmt.Sprintf("User %s connected from device %s, not seen for them before (%s)", r.User, r.Device, r.IP)
			})
		}
	}
	if r.Zone != "" && !slices.Contains(p.zones, r.Zone) {
		if len(p.zones) < maxZones {
			p.zones = append(p.zones, r.Zone)
		}
		if m.set.rules[config.RuleNewZone].on {
			m.fire(learning, config.RuleNewZone, KindUser, r.User, t, []string{ev}, func() (string, string) {
				return fmt.Sprintf("利用者 %s がこれまで使っていないネットワーク区分 %s から接続しました（%s）", r.User, r.Zone, r.IP),
					fmt.Sprintf("User %s connected from zone %s, not seen for them before (%s)", r.User, r.Zone, r.IP)
			})
		}
	}
}

func (m *Monitor) health(component, errText string) {
	m.fire(false, config.RuleAuditFailure, KindComponent, component, m.opts.now(), nil, func() (string, string) {
		return fmt.Sprintf("%s が失敗しています: %s", component, errText),
			fmt.Sprintf("%s is failing: %s", component, errText)
	})
}

// expire forgets what no rule needs any more.
func (st *state) expire(now time.Time, set *settings) {
	var longest time.Duration
	for _, r := range set.rules {
		longest = max(longest, r.window)
	}
	for k, w := range st.windows {
		if len(w.times) == 0 || now.Sub(w.times[len(w.times)-1]) > longest {
			delete(st.windows, k)
		}
	}
	for k, u := range st.usage {
		if now.Sub(u.last) > 7*24*time.Hour {
			delete(st.usage, k)
		} else if h := now.Unix() / 3600; h != u.hour && len(u.paths) > 0 {
			u.fold()
			u.hour = h
		}
	}
	for k, at := range st.revoked {
		if now.Sub(at) > revokedMemory {
			delete(st.revoked, k)
		}
	}
	for k, p := range st.persons {
		if now.Sub(p.last) > personIdleDrop {
			delete(st.persons, k)
		}
	}
	if len(st.windows) < maxKeys/2 && len(st.usage) < maxKeys/2 && len(st.persons) < maxKeys/2 {
		st.overflow = false
	}
}

func kindJA(kind string) string {
	switch kind {
	case KindUser:
		return "利用者"
	case KindDevice:
		return "端末"
	case KindIP:
		return "送信元アドレス"
	}
	return kind
}

func durJA(d time.Duration) string {
	if d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + " 時間"
	}
	if d%time.Minute == 0 {
		return strconv.Itoa(int(d/time.Minute)) + " 分"
	}
	return d.String()
}

// durEN writes 5m rather than 5m0s.
func durEN(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}
