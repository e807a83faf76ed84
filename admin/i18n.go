package admin

import (
	"fmt"

	"github.com/sekisho/sekisho/config"
)

// messages holds every text a person reads in the console: Japanese first,
// English second. Verbs (%s, %d) are filled by tr.
var messages = map[string][2]string{
	"app.name":  {"関所 管理コンソール", "sekisho admin console"},
	"nav.label": {"メニュー", "Menu"},
	"actor":     {"操作者: %s", "Signed in as %s"},
	"footer":    {"時刻は %s で表示", "Times shown in %s"},

	"nav.overview": {"概況", "Overview"},
	"nav.audit":    {"監査ログ検索", "Audit search"},
	"nav.timeline": {"インシデント時系列", "Incident timeline"},
	"nav.users":    {"利用者", "Users"},
	"nav.devices":  {"端末", "Devices"},
	"nav.revoke":   {"緊急遮断", "Kill switch"},
	"nav.policy":   {"ポリシー", "Policy"},

	"none":          {"ありません", "None"},
	"any":           {"（すべて）", "(any)"},
	"total":         {"合計", "Total"},
	"count":         {"件数", "Count"},
	"search":        {"検索", "Search"},
	"list.filter":   {"絞り込み（ID・名前・所属・ロールの一部）", "Filter (part of an id, name, department or role)"},
	"list.shown":    {"%d 件を表示", "%d shown"},
	"list.range":    {"%[3]d 件中 %[1]d〜%[2]d 件", "%[1]d–%[2]d of %[3]d"},
	"list.page":     {"%d / %d ページ", "page %d of %d"},
	"list.prev":     {"← 前へ", "← previous"},
	"list.next":     {"次へ →", "next →"},
	"created":       {"作成", "Created"},
	"expires":       {"有効期限", "Expires"},
	"lastseen":      {"最終確認", "Last seen"},
	"unreadable":    {"記録として読めない行が %d 行あります。sekisho audit verify で原因を確認してください。", "%d lines could not be read as records; run sekisho audit verify to find out why."},
	"back.overview": {"概況へ戻る", "Back to the overview"},
	"back.user":     {"利用者の画面へ戻る", "Back to the user"},

	"dec.allow":      {"許可", "Allowed"},
	"dec.deny":       {"拒否", "Denied"},
	"dec.stepup":     {"再認証", "Step-up"},
	"dec.error":      {"エラー", "Error"},
	"enforced.true":  {"強制", "Enforced"},
	"enforced.false": {"シャドー（記録のみ）", "Shadow (logged only)"},
	"ev.access":      {"アクセス", "Access"},
	"ev.authn":       {"認証", "Authentication"},
	"ev.admin":       {"管理操作", "Admin"},
	"ev.system":      {"システム", "System"},
	"ev.alert":       {"警告", "Alert"},
	"ev.checkpoint":  {"チェックポイント", "Checkpoint"},

	"f.user":       {"利用者", "User"},
	"f.device":     {"端末", "Device"},
	"f.route":      {"ルート", "Route"},
	"f.class":      {"機密性分類", "Asset class"},
	"f.zone":       {"接続元ゾーン", "Zone"},
	"f.decision":   {"判定", "Decision"},
	"f.enforced":   {"強制／シャドー", "Enforced"},
	"f.event":      {"種別", "Event"},
	"f.request_id": {"要求ID", "Request id"},
	"f.since":      {"開始", "Since"},
	"f.until":      {"終了", "Until"},
	"f.reasons":    {"理由", "Reasons"},
	"f.reason":     {"理由（監査記録に残ります）", "Reason (kept in the audit record)"},
	"f.id":         {"利用者ID", "User id"},
	"f.name":       {"氏名・名前", "Name"},
	"f.department": {"所属", "Department"},
	"f.roles":      {"ロール", "Roles"},
	"f.status":     {"状態", "Status"},
	"f.owner":      {"利用者", "Owner"},

	"status.enabled":  {"有効", "Enabled"},
	"status.disabled": {"無効", "Disabled"},
	"status.active":   {"利用中", "Active"},
	"status.revoked":  {"利用停止", "Isolated"},
	"status.pending":  {"登録待ち", "Awaiting registration"},

	"ov.window":             {"%s から %s までの24時間", "The 24 hours from %s to %s"},
	"ov.requests":           {"要求（24時間）", "Requests (24 h)"},
	"ov.passkeys":           {"パスキー登録率", "Staff with a passkey"},
	"ov.passkeys.detail":    {"有効な職員 %[2]d 人中 %[1]d 人がパスキーを登録済み", "%d of %d enabled staff have at least one passkey"},
	"ov.revokeddevices":     {"利用停止中の端末", "Isolated devices"},
	"ov.byclass":            {"機密性分類別の判定", "Decisions by asset class"},
	"ov.byhour":             {"時間帯別の要求", "Requests by hour of day"},
	"ov.reasons":            {"拒否理由（上位）", "Top denial reasons"},
	"ov.shadow":             {"シャドーモードで拒否となる要求（ルート別）", "Shadow mode: would have been denied, by route"},
	"ov.alerts":             {"最近の警告（24時間）", "Recent alerts (24 h)"},
	"ov.alerts.none":        {"この24時間に監視機能の警告はありません", "No monitoring alerts in the last 24 hours"},
	"ov.alerts.more":        {"全 %d 件のうち新しい %d 件を表示しています", "Showing the newest %[2]d of %[1]d alerts"},
	"ov.alerts.search":      {"警告をすべて検索", "Search all alerts"},
	"sev.critical":          {"緊急", "Critical"},
	"sev.high":              {"高", "High"},
	"sev.medium":            {"中", "Medium"},
	"sev.low":               {"低", "Low"},
	"tl.alert":              {"監視警告", "Monitoring alert"},
	"tl.alerts":             {"監視警告", "Monitoring alerts"},
	"ov.health":             {"監査証跡の健全性", "Audit trail health"},
	"ov.health.ok":          {"改ざんなし", "Intact"},
	"ov.health.bad":         {"改ざん・欠落を検出", "Tampering or loss detected"},
	"ov.health.error":       {"検証を実行できませんでした（ログを確認）", "Verification could not run (see the log)"},
	"ov.health.noconfig":    {"検証用の公開鍵が設定されていません", "No public key configured for verification"},
	"ov.health.detail":      {"%d 件の記録、%d ファイル、%d 個のチェックポイント、未署名 %d 件", "%d records, %d files, %d checkpoints, %d not yet sealed"},
	"ov.health.writable":    {"書き込み: 正常", "Writing: working"},
	"ov.health.notwritable": {"書き込み: 失敗中（監査が同期必須の分類は 503 で拒否されています）", "Writing: failing (classes that need a durable record are refused with 503)"},
	"ov.health.lastckpt":    {"最新チェックポイント", "Last checkpoint"},
	"ov.health.checked":     {"検証時刻", "Verified at"},
	"ov.health.verify":      {"今すぐ検証", "Verify now"},

	"audit.csv":    {"この条件で CSV 出力（Excel 用 UTF-8 BOM 付き）", "Export this search as CSV (UTF-8 with BOM for Excel)"},
	"audit.count":  {"該当 %d 件", "%d matching records"},
	"audit.range":  {"新しい順に %d〜%d 件目", "newest first, %d to %d"},
	"audit.none":   {"該当する記録はありません", "No matching records"},
	"audit.capped": {"ページが多すぎます。条件を絞るか CSV で出力してください。", "Too many pages; narrow the search or export CSV."},
	"pager":        {"ページ", "Pages"},
	"pager.newer":  {"← 新しい記録", "← Newer"},
	"pager.older":  {"古い記録 →", "Older →"},
	"pager.page":   {"%d / %d ページ", "Page %d of %d"},

	"tl.show":       {"表示", "Show"},
	"tl.help":       {"利用者IDまたは端末IDを入れると、期間内（既定は直近7日）のすべての認証とアクセスを1ページに時系列で表示します。印刷してそのまま記録に使えます。", "Enter a user or device id to see every authentication and access in the window (default: the last 7 days) on one printable page."},
	"tl.ofuser":     {"利用者 %s の時系列", "Timeline of user %s"},
	"tl.ofdevice":   {"端末 %s の時系列", "Timeline of device %s"},
	"tl.window":     {"期間 %s 〜 %s", "From %s to %s"},
	"tl.printed":    {"作成者 %s（%s）", "Prepared by %s at %s"},
	"tl.account":    {"アカウント", "Account"},
	"tl.devicerec":  {"端末台帳", "Device registry"},
	"tl.first":      {"最初の記録", "First record"},
	"tl.last":       {"最後の記録", "Last record"},
	"tl.decisions":  {"件数", "Counts"},
	"tl.ips":        {"接続元IP", "Source addresses"},
	"tl.killswitch": {"緊急遮断へ", "Go to the kill switch"},
	"tl.csv":        {"この期間の記録を CSV 出力", "Export this window as CSV"},
	"tl.truncated":  {"記録が多すぎるため先頭 5000 件だけを表示しています。期間を狭めてください。", "Only the first 5,000 records are shown; narrow the window."},
	"tl.none":       {"この期間の記録はありません", "No records in this window"},
	"col.time":      {"時刻", "Time"},
	"col.severity":  {"重大度", "Severity"},
	"col.rule":      {"ルール", "Rule"},
	"col.subject":   {"対象", "Subject"},
	"col.summary":   {"概要", "Summary"},
	"col.evidence":  {"根拠の要求ID", "Evidence request ids"},
	"col.request":   {"要求", "Request"},

	"user.title":          {"利用者 %s", "User %s"},
	"user.add":            {"利用者の追加", "Add a user"},
	"user.add.submit":     {"追加", "Add"},
	"user.passkeys":       {"パスキー", "Passkeys"},
	"user.nopasskey":      {"パスキー未登録", "No passkey"},
	"user.clone":          {"複製の疑い（使用停止中）", "Clone warning (refused)"},
	"user.lastlogin":      {"最終ログイン", "Last sign-in"},
	"user.lastused":       {"最終使用", "Last used"},
	"user.synced":         {"同期型", "Synced"},
	"user.sessions":       {"セッション", "Sessions"},
	"user.session.revoke": {"このセッションを遮断", "Revoke this session"},
	"user.actions":        {"操作", "Actions"},
	"user.disable":        {"無効化（セッションも即時終了）", "Disable (ends sessions at once)"},
	"user.disable.help":   {"無効化すると、すべてのゲートウェイでこの利用者のセッションが1秒以内に終了します。", "Disabling ends this user's sessions on every gateway within a second."},
	"user.enable":         {"有効化", "Enable"},
	"user.passkey.delete": {"削除", "Remove"},
	"invite.title":        {"登録用URL（一度だけ表示）", "Enrollment URL (shown once)"},
	"invite.ttl":          {"有効期間", "Valid for"},
	"invite.submit":       {"パスキー登録用URLを発行", "Issue an enrollment URL"},
	"invite.once":         {"このURLは今回だけ表示されます。保存されないため、再表示できません。本人にだけ安全な方法で渡してください。", "This URL is shown only now; it is not stored and cannot be shown again. Give it to the user alone, by a safe channel."},
	"invite.for":          {"利用者 %s（%s）用", "For user %s (%s)"},
	"invite.expires":      {"有効期限 %s（1回限り）", "Valid until %s, single use"},

	"dev.counts":   {"利用中 %d 台、利用停止 %d 台", "%d active, %d isolated"},
	"dev.pending":  {"登録待ち %d 台（証明書は有効ですが、情報政策課が登録するまで「登録端末」の条件を満たしません）", "%d awaiting registration (valid certificates, but not registered devices until IT registers them)"},
	"dev.register": {"登録する", "Register"},
	"dev.first":    {"初回確認", "First seen"},
	"dev.certs":    {"証明書", "Certificates"},
	"dev.isolate":  {"切り離し…", "Isolate…"},
	"dev.enable":   {"利用再開", "Return to service"},

	"rv.help":         {"利用者・端末・セッション、または全員のセッションを直ちに終了します。次の画面で内容を確認してから実行します。理由は必須で、監査記録に残ります。", "Ends the sessions of a user, a device, one session, or everyone at once. The next page repeats what will happen before anything is done. A reason is required and kept in the audit record."},
	"rv.kind":         {"対象の種類", "What to revoke"},
	"rv.kind.user":    {"利用者（無効化してセッション終了）", "A user (disable and end sessions)"},
	"rv.kind.device":  {"端末（切り離し）", "A device (isolate)"},
	"rv.kind.session": {"1つのセッション", "One session"},
	"rv.kind.all":     {"全員のセッション", "Every session"},
	"rv.subject":      {"利用者ID・端末ID・セッションID（全員の場合は空欄）", "User, device or session id (empty for everyone)"},
	"rv.next":         {"確認画面へ", "Review"},
	"rv.at":           {"実行時刻 %s", "Done at %s"},

	"confirm.title":     {"緊急遮断の確認", "Confirm the kill switch"},
	"cf.lead":           {"次の操作を実行します。よろしいですか。", "This will be done. Are you sure?"},
	"cf.user.disable":   {"利用者 %s を無効化します", "User %s will be disabled"},
	"cf.user.keep":      {"パスキーは残ります（再開は「有効化」で行います）", "Their passkeys are kept (re-enable to restore access)"},
	"cf.device.isolate": {"端末 %s を利用停止にし、その端末証明書を直ちに拒否します", "Device %s will be isolated and its certificate refused at once"},
	"cf.device.unknown": {"この端末は台帳にありません。利用停止として登録します。", "This device is not in the registry; it will be registered as isolated."},
	"cf.device.crl":     {"CRL の更新を待たずに拒否されます。恒久的には証明書も失効させてください（sekisho certs revoke）。", "It is refused before the next CRL; revoke its certificate too (sekisho certs revoke)."},
	"cf.session":        {"セッション %s を終了します", "Session %s will end"},
	"cf.sessions":       {"現在有効なセッション %d 件が終了します", "%d current sessions will end"},
	"cf.all":            {"全員のセッション（現在 %d 件）が終了し、全職員が再ログインを求められます", "Every session (%d now) ends; all staff must sign in again"},
	"cf.self":           {"あなた自身のセッションも終了します", "Your own session ends too"},
	"cf.replicas":       {"すべてのゲートウェイが1秒以内に反映します", "Every gateway applies it within a second"},
	"cf.reason":         {"理由", "Reason"},
	"cf.audit":          {"操作者 %s として監査証跡に記録されます", "It is recorded in the audit trail as done by %s"},
	"cf.execute":        {"遮断を実行する", "Revoke now"},
	"cf.cancel":         {"やめる", "Cancel"},
	"cf.expires":        {"この確認は %s まで有効です", "This confirmation is valid until %s"},
	"revoked.title":     {"遮断しました", "Revoked"},

	"pol.explain":        {"判定の説明（sekisho policy explain と同じエンジン）", "Explain a decision (the engine of sekisho policy explain)"},
	"pol.explain.submit": {"説明する", "Explain"},
	"pol.method":         {"メソッド", "Method"},
	"pol.path":           {"パス", "Path"},
	"pol.authage":        {"認証からの経過時間", "Time since authentication"},
	"pol.time":           {"要求の時刻（空欄は現在）", "Request time (empty: now)"},
	"pol.decision":       {"判定", "Decision"},
	"pol.rule":           {"規則", "Rule"},
	"pol.subjects":       {"主体として照合", "Matched as subjects"},
	"pol.objects":        {"対象として照合", "Matched as objects"},
	"pol.request":        {"判定した要求", "Request decided"},
	"pol.rules":          {"照合した規則", "Rules that matched"},
	"pol.text":           {"規則の本文", "Rule text"},
	"pol.result":         {"結果", "Result"},
	"pol.failed":         {"満たさなかった条件", "Conditions not met"},
	"pol.changes":        {"判定を変えるには", "What would change the decision"},
	"pol.inforce":        {"適用中のポリシー", "Policy in force"},
	"pol.version":        {"版", "Version"},
	"pol.stale":          {"ファイルの内容は適用中のポリシーと異なります（再読み込みに失敗したか、未反映です）。sekisho config check で確認してください。", "The file differs from the policy in force (a reload failed or has not happened); check it with sekisho config check."},
	"note.nouser":        {"この利用者はストアにありません（ロール・所属なしで判定）", "The user is not in the store (decided without roles or department)"},
	"note.disabled":      {"この利用者は無効化されています。ゲートウェイはログインさせません", "The user is disabled; the gateway will not let them sign in"},
	"note.nodevice":      {"この端末は台帳にありません（未登録として判定）", "The device is not in the registry (decided as unregistered)"},
	"note.storeerr":      {"ストアを読めませんでした", "The store could not be read"},

	"done.verified":        {"監査証跡を検証しました", "The audit trail was verified"},
	"done.user_added":      {"利用者を追加しました。次にパスキー登録用URLを発行してください。", "User added. Next, issue an enrollment URL."},
	"done.user_disabled":   {"利用者を無効化し、セッションを終了しました", "The user was disabled and their sessions ended"},
	"done.user_enabled":    {"利用者を有効化しました", "The user was enabled"},
	"done.passkey_deleted": {"パスキーを削除しました", "The passkey was removed"},
	"done.device_enabled":  {"端末の利用を再開しました", "The device is back in service"},
	"done.revoked":         {"遮断しました: %s（#%d）", "Revoked: %s (#%d)"},

	"err.title":       {"エラー", "Error"},
	"err.forbidden":   {"この画面を使う権限がありません", "You may not use this page"},
	"err.crossorigin": {"別のサイトからの操作は受け付けません", "Requests from another site are refused"},
	"err.csrf":        {"フォームの有効期限が切れたか、不正な送信です。画面を開き直してください。", "The form has expired or was not sent from this console; open the page again."},
	"err.badform":     {"送信内容を読めません", "The form could not be read"},
	"err.method":      {"この方法では操作できません", "Method not allowed"},
	"err.notfound":    {"ページが見つかりません", "Page not found"},
	"err.internal":    {"内部エラーが発生しました。操作は完了していない可能性があります。ログを確認してください。", "An internal error occurred; the action may not have completed. See the log."},
	"err.toolong":     {"%s が長すぎます", "%s is too long"},
	"err.badvalue":    {"%s の値が正しくありません", "%s has a value that is not allowed"},
	"err.badvalue0":   {"送信内容が正しくありません", "The form is not valid"},
	"err.badtime":     {"%s は 2026-04-01T09:00 のような日時で入力してください", "Enter %s as a date and time like 2026-04-01T09:00"},
	"err.timeorder":   {"%s は開始より後にしてください", "%s must be after the start"},
	"err.badfilter":   {"検索条件が正しくありません", "The search is not valid"},
	"err.badid":       {"利用者IDは空白・制御文字を含まない128バイト以内で入力してください", "A user id is up to 128 bytes, without spaces or control characters"},
	"err.badtext":     {"入力に使えない文字が含まれているか、長すぎます", "The input is too long or has characters that are not allowed"},
	"err.exists":      {"その利用者IDは既に使われています", "That user id is already taken"},
	"err.nouser":      {"その利用者は見つかりません", "No such user"},
	"err.nodevice":    {"その端末は見つかりません", "No such device"},
	"err.nopasskey":   {"そのパスキーは見つかりません", "No such passkey"},
	"err.disabled":    {"無効化された利用者には登録用URLを発行できません", "A disabled user cannot be invited"},
	"err.badttl":      {"有効期間が正しくありません", "The validity is not allowed"},
	"err.reason":      {"理由を入力してください（500文字以内）", "Enter a reason (up to 500 characters)"},
	"err.kind":        {"対象の種類を選んでください", "Choose what to revoke"},
	"err.subject":     {"対象のIDを入力してください", "Enter the id to revoke"},
	"err.confirm":     {"確認画面を経ていないため実行しませんでした。内容を確認してからもう一度実行してください。", "Nothing was done: the confirmation step was missing or expired. Review and try again."},
	"err.badexplain":  {"説明する要求の指定が正しくありません（ルート、時刻、経過時間を確認）", "The request to explain is not valid (check route, time and age)"},
}

func hasMessage(key string) bool {
	_, ok := messages[key]
	return ok
}

// tr returns the message for key in lang ("en" or Japanese), formatted
// with args. An unknown key is returned as is, so a missing text shows up
// in tests rather than as an empty page.
func tr(lang, key string, args ...any) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	s := m[0]
	if lang == "en" {
		s = m[1]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// classLabel names an asset class for a chart: the configured label in
// Japanese ("機密性3A"), "Class 3A" in English.
func classLabel(p *page, classes map[string]config.Class, key string) string {
	if p.Lang == "en" {
		return "Class " + key
	}
	if c, ok := classes[key]; ok && c.Label != "" {
		return c.Label
	}
	return key
}
