package directory_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sekisho/sekisho/directory"
	"github.com/sekisho/sekisho/store"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "directory-example")
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, "sqlite", filepath.Join(dir, "sekisho.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	st.CreateUser(ctx, &store.User{ID: "sato", DisplayName: "佐藤 花子", Department: "財務課", Roles: []string{"財務"}})

	csv := "職員番号,氏名,所属,ロール,状態,発令日\n" +
		"sato,佐藤 花子,福祉課,福祉,有効,2027-04-01\n" +
		"yamada,山田 太郎,財務課,財務,有効,\n"
	src, err := directory.ParseCSV("jinji.csv", []byte(csv), directory.CSVOptions{Roles: directory.NewRoles("財務", "福祉")})
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2027, 3, 25, 10, 0, 0, 0, time.UTC)
	clock := directory.WithClock(func() time.Time { return now })
	cs, err := directory.Plan(ctx, st, src, clock)
	if err != nil {
		log.Fatal(err)
	}
	cs.Render(os.Stdout)
	if _, err := directory.Apply(ctx, st, cs, clock); err != nil {
		log.Fatal(err)
	}

	// On April 1st, 00:00 in Tokyo, the gateway's scheduler moves sato.
	now = time.Date(2027, 3, 31, 15, 0, 0, 0, time.UTC)
	s, _ := directory.NewScheduler(st, clock)
	res, err := s.RunDue(ctx)
	if err != nil {
		log.Fatal(err)
	}
	u, _ := st.GetUser(ctx, "sato")
	fmt.Println(res.Changed, u.Department, u.Roles)
	// Output:
	// 取込計画 (import plan): jinji.csv [差分 partial]
	//   追加 add: 1, 変更 change: 0, 無効化 disable: 0, 有効化 enable: 0, 予約 scheduled: 1, 変更なし unchanged: 0
	// + 追加 add yamada: 新規 new — 氏名 name: 山田 太郎, 所属 department: 財務課, ロール roles: 財務 [jinji.csv:3]
	// @ 予約 scheduled sato (発令日 effective 2027-04-01): 所属 department: 財務課 → 福祉課, ロール roles: 財務 → 福祉 [jinji.csv:2]
	// 1 福祉課 [福祉]
}
