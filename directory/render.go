package directory

import (
	"fmt"
	"io"
	"strings"
)

var actionLabels = map[string]struct{ mark, label string }{
	ActionAdd:      {"+", "追加 add"},
	ActionChange:   {"~", "変更 change"},
	ActionDisable:  {"-", "無効化 disable"},
	ActionEnable:   {"^", "有効化 enable"},
	ActionSchedule: {"@", "予約 scheduled"},
}

// Render writes the plan for a person: a summary, then one line per
// change, Japanese first with English alongside.
func (cs *ChangeSet) Render(w io.Writer) error {
	var b strings.Builder
	kind := "差分 partial"
	if cs.Full {
		kind = "全件 full"
	}
	fmt.Fprintf(&b, "取込計画 (import plan): %s [%s]\n", cs.Source, kind)
	fmt.Fprintf(&b, "  追加 add: %d, 変更 change: %d, 無効化 disable: %d, 有効化 enable: %d, 予約 scheduled: %d, 変更なし unchanged: %d\n",
		cs.Count(ActionAdd), cs.Count(ActionChange), cs.Count(ActionDisable), cs.Count(ActionEnable), len(cs.Scheduled), cs.Unchanged)
	for _, c := range cs.Changes {
		writeChange(&b, c)
	}
	for _, c := range cs.Scheduled {
		writeChange(&b, c)
	}
	for _, id := range cs.Kept {
		fmt.Fprintf(&b, "= 維持 kept %s: 一覧に無いが directory.keep にあるため無効化しません (not listed, kept by directory.keep)\n", id)
	}
	if cs.Empty() {
		b.WriteString("変更はありません (nothing to change)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeChange(b *strings.Builder, c *Change) {
	l := actionLabels[c.Action]
	fmt.Fprintf(b, "%s %s %s", l.mark, l.label, c.ID)
	if c.Action == ActionSchedule {
		fmt.Fprintf(b, " (発令日 effective %s)", c.Effective.Format("2006-01-02"))
	}
	if c.Before == nil {
		fmt.Fprintf(b, ": 新規 new — 氏名 name: %s, 所属 department: %s, ロール roles: %s",
			show(c.After.DisplayName), show(c.After.Department), show(strings.Join(c.After.Roles, ";")))
		if c.After.Disabled {
			b.WriteString(", 状態 status: 無効 disabled")
		}
	} else {
		var parts []string
		for _, d := range c.Diffs() {
			parts = append(parts, fmt.Sprintf("%s: %s → %s", d.Label, show(d.Before), show(d.After)))
		}
		if len(parts) == 0 {
			parts = append(parts, "現在と同じ (same as now)")
		}
		b.WriteString(": " + strings.Join(parts, ", "))
	}
	if c.Missing {
		b.WriteString(" (全件取込に無し not in the full import)")
	}
	if c.Where != "" && !c.Missing {
		fmt.Fprintf(b, " [%s]", c.Where)
	}
	b.WriteString("\n")
}

// Render writes a summary of what was applied.
func (r *Result) Render(w io.Writer) error {
	_, err := fmt.Fprintf(w, "反映しました (applied): 追加 add %d, 変更 change %d, 無効化 disable %d, 有効化 enable %d, 予約 scheduled %d; セッション遮断 sessions revoked: %d\n",
		r.Added, r.Changed, r.Disabled, r.Enabled, r.Scheduled, len(r.Revoked))
	return err
}
