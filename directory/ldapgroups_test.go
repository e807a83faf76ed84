package directory

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpandMembers(t *testing.T) {
	groups := map[string][]string{
		"cn=a": {"uid=1", "cn=b"},
		"cn=b": {"uid=2", "cn=c", "cn=a"}, // cycle a → b → a
		"cn=c": {"uid=3", "cn=c"},         // c is in itself
		"cn=e": nil,                       // an empty group
	}
	tests := []struct {
		name, root string
		direct     []string
		want       []string
	}{
		{"cycle through the root", "cn=a", groups["cn=a"], []string{"cn=b", "cn=c", "uid=1", "uid=2", "uid=3"}},
		{"group in itself", "cn=c", groups["cn=c"], []string{"uid=3"}},
		{"not a group", "cn=x", []string{"uid=9", "cn=unknown"}, []string{"cn=unknown", "uid=9"}},
		{"empty group", "cn=x", []string{"cn=e"}, []string{"cn=e"}},
		{"no members", "cn=e", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expandMembers(groups, tt.root, tt.direct, MaxGroupNesting, MaxGroupMembers)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
		})
	}
}

// chain is g0 ⊃ g1 ⊃ … ⊃ g(n-1) ⊃ uid=last.
func chain(n int) map[string][]string {
	groups := map[string][]string{}
	for i := range n - 1 {
		groups[fmt.Sprintf("cn=g%d", i)] = []string{fmt.Sprintf("cn=g%d", i+1)}
	}
	groups[fmt.Sprintf("cn=g%d", n-1)] = []string{"uid=last"}
	return groups
}

func TestExpandMembersBounds(t *testing.T) {
	// The root's direct members are level 1: g1 … g31 are levels 1 to 31
	// and uid=last, in g31, is level 32.
	ok := chain(MaxGroupNesting)
	got, err := expandMembers(ok, "cn=g0", ok["cn=g0"], MaxGroupNesting, MaxGroupMembers)
	if err != nil || len(got) != MaxGroupNesting || !strings.Contains(strings.Join(got, " "), "uid=last") {
		t.Fatalf("%d levels: %d members, %v", MaxGroupNesting, len(got), err)
	}
	deep := chain(MaxGroupNesting + 1)
	_, err = expandMembers(deep, "cn=g0", deep["cn=g0"], MaxGroupNesting, MaxGroupMembers)
	if err == nil || !strings.Contains(err.Error(), "グループの入れ子が 32 段を超えています (groups nested deeper than 32 levels, at cn=g32") {
		t.Errorf("%d levels: %v", MaxGroupNesting+1, err)
	}
	// A cycle back at the deepest level adds nothing and is no error.
	ok["cn=g31"] = append(ok["cn=g31"], "cn=g0", "cn=g5")
	if _, err := expandMembers(ok, "cn=g0", ok["cn=g0"], MaxGroupNesting, MaxGroupMembers); err != nil {
		t.Errorf("cycle at the deepest level: %v", err)
	}

	wide := map[string][]string{"cn=sub": nil}
	for i := range 11 {
		wide["cn=sub"] = append(wide["cn=sub"], fmt.Sprintf("uid=%d", i))
	}
	if _, err := expandMembers(wide, "cn=top", []string{"cn=sub"}, MaxGroupNesting, 12); err != nil {
		t.Errorf("12 members with a cap of 12: %v", err)
	}
	_, err = expandMembers(wide, "cn=top", []string{"cn=sub"}, MaxGroupNesting, 11)
	if err == nil || !strings.Contains(err.Error(), "cn=top: 入れ子グループを含めたメンバーが 11 を超えています") {
		t.Errorf("12 members with a cap of 11: %v", err)
	}
}
