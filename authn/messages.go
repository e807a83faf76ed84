package authn

// messages holds every text a person reads on sekisho's own pages and in
// its JSON errors: Japanese first, English second.
var messages = map[string][2]string{
	// Titles.
	"title_login":   {"ログイン", "Sign in"},
	"title_stepup":  {"再認証", "Verify it's you"},
	"title_enroll":  {"パスキーの登録", "Register a passkey"},
	"title_account": {"アカウント", "Your account"},
	"title_error":   {"お知らせ", "Notice"},
	"gateway":       {"アクセスゲートウェイ", "access gateway"},
	"nojs":          {"このページを使うには JavaScript を有効にしてください。", "Please enable JavaScript to use this page."},
	"request_id":    {"要求ID", "Request ID"},
	"working":       {"認証器の操作を待っています…", "Waiting for your authenticator…"},
	"no_webauthn":   {"このブラウザーはパスキーに対応していません。", "This browser does not support passkeys."},
	"continue":      {"次へ進む", "Continue"},
	"cancelled":     {"操作が取り消されたか、時間切れになりました。もう一度お試しください。", "The operation was cancelled or timed out. Please try again."},

	// Login.
	"login_lead":       {"パスキー（Windows Hello、Touch ID、セキュリティキーなど）でログインしてください。パスワードは使いません。", "Sign in with your passkey (Windows Hello, Touch ID, a security key…). No password is used."},
	"stepup_lead":      {"この操作には、生体認証または PIN による本人確認がもう一度必要です。", "This action needs you to verify yourself again with biometrics or your PIN."},
	"login_button":     {"パスキーでログイン", "Sign in with a passkey"},
	"stepup_button":    {"パスキーで本人確認", "Verify with your passkey"},
	"enrolled_notice":  {"パスキーを登録しました。続けてログインしてください。", "Your passkey is registered. Please sign in."},
	"logged_out":       {"ログアウトしました。", "You have signed out."},
	"login_no_passkey": {"パスキーをお持ちでない場合は、情報政策課から届く登録用URLを開いてください。", "If you have no passkey yet, open the enrollment link sent by the IT department."},

	// Enrollment.
	"enroll_lead":    {"次のアカウントにパスキーを登録します。", "You are registering a passkey for this account:"},
	"enroll_button":  {"パスキーを登録", "Register a passkey"},
	"enroll_note":    {"この登録用URLは一度だけ使えます。他の人に渡さないでください。", "This enrollment link works once. Do not share it."},
	"enroll_invalid": {"この登録用URLは無効か、使用済みか、期限切れです。情報政策課に新しいURLを依頼してください。", "This enrollment link is invalid, used or expired. Ask the IT department for a new one."},

	// Account.
	"account_user":       {"利用者", "User"},
	"account_department": {"所属", "Department"},
	"account_roles":      {"ロール", "Roles"},
	"account_amr":        {"認証方式", "Authentication"},
	"account_device":     {"この端末", "This device"},
	"account_auth_time":  {"認証時刻", "Signed in at"},
	"account_expiry":     {"有効期限", "Session expires"},
	"passkeys":           {"パスキー", "Passkeys"},
	"passkey_name":       {"名前", "Name"},
	"passkey_created":    {"登録日時", "Registered"},
	"passkey_last_used":  {"最終利用", "Last used"},
	"passkey_synced":     {"同期型", "Synced"},
	"passkey_warning":    {"複製の疑い（利用停止中）", "Possible clone (blocked)"},
	"rename":             {"名前を変更", "Rename"},
	"remove":             {"削除", "Remove"},
	"add_passkey":        {"パスキーを追加", "Add a passkey"},
	"devices":            {"端末", "Devices"},
	"device_id":          {"端末ID", "Device ID"},
	"device_status":      {"状態", "Status"},
	"device_last_seen":   {"最終接続", "Last seen"},
	"no_devices":         {"登録された端末はありません。", "No registered devices."},
	"logout":             {"ログアウト", "Sign out"},
	"yes":                {"はい", "yes"},
	"none":               {"なし", "none"},
	"default_passkey":    {"パスキー", "Passkey"},
	"passkey_added":      {"パスキーを追加しました。", "The passkey was added."},

	// Errors (JSON "message" and the notice page).
	"err_not_found":          {"ページが見つかりません。", "Page not found."},
	"err_unavailable":        {"認証サービスに一時的に接続できません。しばらく待ってから再度お試しください。ログイン済みの方はそのまま利用を続けられます。", "The sign-in service is temporarily unreachable. Please try again in a moment; if you are signed in you can keep working."},
	"err_internal":           {"内部エラーが発生しました。時間をおいて再度お試しください。", "An internal error occurred. Please try again later."},
	"err_bad_request":        {"要求の形式が正しくありません。", "The request is malformed."},
	"err_content_type":       {"要求の形式が正しくありません（JSON で送信してください）。", "The request must be sent as JSON."},
	"err_cross_origin":       {"別のサイトからの要求は受け付けません。", "Requests from another site are refused."},
	"err_csrf":               {"フォームの有効期限が切れました。ページを再読み込みしてやり直してください。", "The form has expired. Reload the page and try again."},
	"err_origin":             {"このアドレスからはパスキーを使えません。正しいURLで開き直してください。", "Passkeys cannot be used from this address. Open the correct URL."},
	"err_ceremony":           {"操作の有効期限が切れたか、すでに使われています。最初からやり直してください。", "This attempt has expired or was already used. Please start again."},
	"err_rate_limited":       {"試行回数が多すぎるため、一時的にロックしています。しばらく待ってから再度お試しください。", "Too many attempts: temporarily locked. Please wait a while and try again."},
	"err_login_failed":       {"パスキーを確認できませんでした。もう一度お試しください。", "The passkey could not be verified. Please try again."},
	"err_unknown_credential": {"このパスキーは登録されていません。登録済みのパスキーを選ぶか、情報政策課に連絡してください。", "This passkey is not registered. Choose a registered passkey or contact the IT department."},
	"err_uv_required":        {"生体認証または PIN による本人確認が必要です。", "Verification with biometrics or your PIN is required."},
	"err_disabled":           {"このアカウントは利用停止されています。情報政策課に連絡してください。", "This account is disabled. Contact the IT department."},
	"err_clone":              {"このパスキーは複製の疑いがあるため利用を停止しました。情報政策課に連絡してください。", "This passkey was blocked as a possible clone. Contact the IT department."},
	"err_invitation":         {"この登録用URLは無効か、使用済みか、期限切れです。情報政策課に新しいURLを依頼してください。", "This enrollment link is invalid, used or expired. Ask the IT department for a new one."},
	"err_aaguid":             {"この認証器の機種は、この組織では登録できません。情報政策課が指定した認証器を使ってください。", "This authenticator model is not allowed here. Use an authenticator approved by the IT department."},
	"err_backup_eligible":    {"同期型パスキー（クラウドにバックアップされるもの）は登録できません。この端末だけに保存されるパスキーかセキュリティキーを使ってください。", "Synced (cloud-backed) passkeys are not allowed. Use a device-bound passkey or a security key."},
	"err_register_failed":    {"パスキーを登録できませんでした。もう一度お試しください。", "The passkey could not be registered. Please try again."},
	"err_already_registered": {"このパスキーはすでに登録されています。", "This passkey is already registered."},
	"err_login_required":     {"ログインが必要です。", "You need to sign in."},
	"err_stepup_required":    {"パスキーによる再認証が必要です。", "Please verify yourself again with your passkey."},
	"err_last_passkey":       {"最後のパスキーは削除できません。先に別のパスキーを追加してください。", "You cannot remove your last passkey. Add another one first."},
	"err_passkey_not_found":  {"そのパスキーは見つかりません。", "That passkey was not found."},
	"err_name":               {"名前は1〜64文字で入力してください。", "Enter a name of 1 to 64 characters."},
}

func translate(lang, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	if lang == "en" {
		return m[1]
	}
	return m[0]
}
