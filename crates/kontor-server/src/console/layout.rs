//! The console's page shell: header with the account, notification bell and user menu, a
//! navigation of object types and settings, and the stylesheet.

use super::Console;
use maud::{html, Markup, DOCTYPE};

/// The bell as inline SVG, so it shows without any icon or emoji font.
const BELL: &str = r#"<svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.7 21a2 2 0 0 1-3.4 0"/></svg>"#;

pub const CSS: &str = r#"
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --bg:#f5f7fa; --brand:#0b6e4f; --brand-ink:#fff; --danger:#b42318; --warn-bg:#fff4e5; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink); background:var(--bg); }
a { color:var(--brand); }
header.top { display:flex; align-items:center; gap:16px; padding:10px 20px; background:#102a43; color:#fff; }
header.top .brand { font-weight:700; letter-spacing:.5px; color:#fff; text-decoration:none; font-size:18px; }
header.top .account { color:#bcccdc; }
header.top .spacer { flex:1; }
header.top a, header.top button.link { color:#fff; }
.bell { position:relative; text-decoration:none; font-size:18px; }
.bell .count { position:absolute; top:-6px; right:-10px; background:#e12d39; color:#fff; border-radius:9px; font-size:11px; padding:0 5px; }
.layout { display:flex; min-height:calc(100vh - 48px); }
nav.side { width:220px; flex-shrink:0; background:#fff; border-right:1px solid var(--line); padding:16px 0; }
nav.side h2 { font-size:12px; text-transform:uppercase; color:var(--muted); margin:16px 20px 6px; }
nav.side a { display:block; padding:6px 20px; text-decoration:none; color:var(--ink); }
nav.side a[aria-current=page] { background:#e3f8ef; color:var(--brand); font-weight:600; border-left:3px solid var(--brand); padding-left:17px; }
main { flex:1; min-width:0; padding:24px 32px; max-width:1200px; }
h1 { font-size:24px; margin:0 0 16px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:20px; margin-bottom:16px; }
.card > :first-child, .card > h2 { margin-top:0; }
.card > :last-child { margin-bottom:0; }
table { width:100%; border-collapse:collapse; background:#fff; margin-bottom:16px; }
th, td { text-align:left; padding:8px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th a { color:var(--ink); text-decoration:none; }
tbody tr:hover { background:#f0f4f8; }
td:last-child code { overflow-wrap:anywhere; }
td label { display:inline; margin:0; font-weight:inherit; }
td .toolbar { margin-bottom:0; gap:8px; }
td .toolbar select { width:auto; }
label { display:block; font-weight:600; margin:12px 0 4px; }
input[type=text], input[type=email], input[type=url], input[type=password], input[type=search], input[type=number], input[type=date], input[type=datetime-local], select, textarea { width:100%; max-width:420px; padding:8px 10px; border:1px solid #9fb3c8; border-radius:6px; font:inherit; background:#fff; color:inherit; }
[aria-invalid=true], .field:has(.error) input, .field:has(.error) select, .field:has(.error) textarea { border-color:var(--danger); }
input:focus, select:focus, textarea:focus, button:focus, a:focus { outline:3px solid #8ed7b8; outline-offset:1px; }
button, .button { display:inline-block; background:var(--brand); color:var(--brand-ink); border:0; border-radius:6px; padding:8px 16px; font:inherit; font-weight:600; cursor:pointer; text-decoration:none; }
button.secondary, .button.secondary { background:#fff; color:var(--ink); border:1px solid #9fb3c8; }
button.danger { background:var(--danger); }
button.link { background:none; border:0; padding:0; font-weight:400; text-decoration:underline; cursor:pointer; }
.error { color:var(--danger); font-size:14px; margin-top:4px; }
.flash { background:#e3f8ef; border:1px solid #8ed7b8; padding:10px 14px; border-radius:6px; margin-bottom:16px; }
.flash.warn { background:var(--warn-bg); border-color:#f7c77e; }
.muted { color:var(--muted); }
.visually-hidden { position:absolute; left:-9999px; }
.filter-grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(200px,1fr)); gap:0 16px; }
.check-row { margin:12px 0 0; }
label.inline { display:inline; }
.check-hint { margin:4px 0 0; }
.field-hint { margin:0 0 4px; }
.toolbar { display:flex; gap:12px; align-items:center; margin-bottom:12px; flex-wrap:wrap; }
.toolbar form { display:flex; gap:8px; }
.pager { display:flex; gap:12px; margin-top:12px; align-items:center; }
.signin { max-width:420px; margin:10vh auto; }
.signin h1 { text-align:center; }
.secret { font-family:ui-monospace,monospace; background:#f0f4f8; padding:8px; border-radius:6px; word-break:break-all; }
.codes { columns:2; max-width:28em; font-family:ui-monospace,monospace; }
dl.props { display:grid; grid-template-columns:220px 1fr; gap:6px 16px; margin:0; }
dl.props dt { color:var(--muted); }
dl.props dd { margin:0; }
.warning { background:var(--warn-bg); border:1px solid #f7c77e; border-left:4px solid #d97706; padding:10px 14px; border-radius:6px; margin:12px 0; }
.actions-row { display:flex; gap:8px; flex-wrap:wrap; align-items:center; margin-top:16px; }
button[disabled], button[aria-disabled=true] { opacity:.55; cursor:not-allowed; }
dialog.confirm { border:1px solid var(--line); border-radius:8px; padding:24px; max-width:560px; width:calc(100% - 32px); box-shadow:0 12px 40px rgba(16,42,67,.25); }
dialog.confirm::backdrop { background:rgba(16,42,67,.45); }
dialog.confirm h2 { margin-top:0; }
table.backups td { vertical-align:middle; }
table.backups th, time.instant > span, .menu > button, .nowrap { white-space:nowrap; }
.warning p { margin:4px 0; }
table.backups tr:target { background:#fffbea; box-shadow:inset 3px 0 0 #d97706; }
.status progress { width:100px; height:10px; vertical-align:middle; margin-right:6px; }
.menu { position:relative; display:inline-block; }
.menu > button::after { content:" \25BE"; }
.menu-items { display:none; position:absolute; right:0; top:100%; z-index:10; min-width:180px; padding:4px 0; margin:0; list-style:none; background:#fff; border:1px solid var(--line); border-radius:6px; box-shadow:0 6px 20px rgba(16,42,67,.18); }
.menu:hover .menu-items, .menu:focus-within .menu-items { display:block; }
.menu-items a, .menu-items button { display:block; width:100%; text-align:left; padding:6px 14px; background:none; border:0; border-radius:0; color:var(--ink); font-weight:400; text-decoration:none; white-space:nowrap; }
.menu-items a:hover, .menu-items a:focus { background:#e3f8ef; color:var(--brand); }
table.imports td { vertical-align:middle; }
table.counts th, td.num { white-space:nowrap; }
table.imports th, table.imports td { padding:8px 8px; }
td.num, table.counts td { font-variant-numeric:tabular-nums; }
.state progress, #import-progress progress { width:100px; height:10px; vertical-align:middle; margin-right:6px; }
fieldset.choices, fieldset#restore-properties { border:0; padding:0; margin:12px 0 0; min-width:0; }
fieldset.choices legend, fieldset#restore-properties > legend { font-weight:600; padding:0; margin-bottom:4px; }
.choice, .check, .prop-choice { display:flex; gap:8px; align-items:baseline; margin:4px 0; }
.choice label, .check label, .prop-choice label { display:inline; margin:0; font-weight:400; }
.check { margin-top:12px; }
table.mapping td, table.mapping th { vertical-align:middle; }
table.mapping select { max-width:320px; }
.sample { display:inline-block; background:#f0f4f8; border-radius:4px; padding:0 6px; margin:1px 0; font-size:13px; max-width:16em; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; vertical-align:middle; }
.scroll { overflow-x:auto; }
tr.rejected td.what { color:var(--danger); }
fieldset.prop-group { border:1px solid var(--line); border-radius:6px; padding:6px 12px; margin:10px 0; }
fieldset.prop-group legend { font-size:13px; text-transform:uppercase; color:var(--muted); padding:0 4px; }
#property-filter { margin:8px 0 4px; }
dialog.panel { margin:0 0 0 auto; height:100vh; max-height:100vh; width:min(560px, 100%); max-width:100%; border:0; border-left:1px solid var(--line); padding:0; box-shadow:-12px 0 40px rgba(16,42,67,.25); overflow:auto; }
dialog.panel::backdrop { background:rgba(16,42,67,.35); }
dialog.panel .panel-head { position:sticky; top:0; display:flex; align-items:center; gap:12px; background:#fff; border-bottom:1px solid var(--line); padding:14px 20px; z-index:1; }
dialog.panel .panel-head h2 { margin:0; flex:1; font-size:18px; }
dialog.panel .panel-body { padding:16px 20px 24px; }
dialog.panel[aria-busy=true] .panel-body { opacity:.6; }
.prop-choice[hidden], fieldset.prop-group[hidden], .js-hide[hidden] { display:none; }
#review-properties, #review-records { margin-top:16px; }
span.button[aria-current=page] { cursor:default; }
.board { display:flex; gap:12px; align-items:flex-start; overflow-x:auto; padding-bottom:12px; }
.board-column { flex:0 0 250px; background:#e9eef4; border:1px solid var(--line); border-radius:8px; padding:10px; min-height:160px; }
.board-column.drop-target { background:#e3f8ef; outline:3px dashed var(--brand); outline-offset:-3px; }
.board-column header h2 { font-size:15px; margin:0; }
.board-column .totals { margin:2px 0 10px; font-size:13px; color:var(--muted); }
.board-column .totals .sum { font-variant-numeric:tabular-nums; color:var(--ink); font-weight:600; }
ol.cards { list-style:none; margin:0; padding:0; display:flex; flex-direction:column; gap:8px; min-height:48px; }
.board-card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:8px 10px; cursor:grab; box-shadow:0 1px 2px rgba(16,42,67,.08); }
.board-card.dragging { opacity:.45; }
.board-card .card-name { font-weight:600; overflow-wrap:anywhere; }
.board-card .meta { font-size:13px; color:var(--muted); }
.board-card form.move { display:flex; gap:6px; margin-top:6px; }
.board-card form.move select { font-size:13px; padding:2px 4px; min-width:0; flex:1; }
.board-card form.move button { padding:2px 10px; font-size:13px; }
.board-column .more { font-size:13px; margin:8px 0 0; }
#board-area[aria-busy=true] .board { opacity:.7; }
table.stages td { vertical-align:middle; }
table.stages th:first-child { width:40%; }
table.stages .toolbar { flex-wrap:nowrap; }
table.stages input[type=text] { max-width:260px; }
table.stages input[name=probability], form.toolbar input[name=probability] { width:6em; }
section.pipeline form.toolbar label { margin:0; }
"#;

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · kontor" }
        link rel="stylesheet" href="/app/assets/app.css";
        script src="/app/assets/app.js" defer {}
    }
}

/// A page for signed-out visitors (sign-in, second factor).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body { main.signin { (body) } }
        }
    }
}

/// A page inside the console, with navigation. `current` is the nav link to mark.
pub fn page(c: &Console, title: &str, current: &str, body: Markup) -> Markup {
    page_with_head(c, title, current, html! {}, body)
}

/// [`page`] with more elements in `<head>` (such as a `<meta http-equiv=refresh>`).
pub fn page_with_head(
    c: &Console,
    title: &str,
    current: &str,
    extra_head: Markup,
    body: Markup,
) -> Markup {
    let nav_link = |href: &str, label: &str| {
        let here = href == current;
        html! { a href=(href) aria-current=[here.then_some("page")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) (extra_head) }
            body {
                header.top {
                    a.brand href="/app" { "kontor" }
                    span.account { (c.account.name) " · " (c.account.region.as_str().to_uppercase()) }
                    span.spacer {}
                    a.bell href="/app/notifications" aria-label=(format!("Notifications, {} unread", c.unread)) {
                        (maud::PreEscaped(BELL)) @if c.unread > 0 { span.count { (c.unread) } }
                    }
                    a href="/app/account/security" { (c.session.user.email) }
                    form method="post" action="/app/logout" {
                        input type="hidden" name="_csrf" value=(c.session.csrf);
                        button.link type="submit" { "Sign out" }
                    }
                }
                div.layout {
                    nav.side aria-label="Main" {
                        h2 { "CRM" }
                        @for (href, label) in &c.nav {
                            (nav_link(href, label))
                        }
                        (nav_link("/app/recycle-bin", "Recycle bin"))
                        @if c.session.user.role != kontor_domain::Role::User {
                            (nav_link("/app/imports", "Imports"))
                        }
                        @if c.session.user.role != kontor_domain::Role::User {
                            h2 { "Settings" }
                            (nav_link("/app/settings/users", "Users"))
                            (nav_link("/app/settings/tokens", "Private apps & tokens"))
                            (nav_link("/app/settings/webhooks", "Webhooks"))
                            (nav_link("/app/settings/integrations/salesforce", "Salesforce"))
                            (nav_link("/app/settings/properties", "Properties"))
                            (nav_link("/app/settings/objects", "Objects"))
                            (nav_link("/app/settings/forms", "Forms"))
                            (nav_link("/app/settings/account", "Account defaults"))
                            (nav_link("/app/settings/audit", "Audit log"))
                        }
                        @if c.session.user.role == kontor_domain::Role::SuperAdmin {
                            h2 { "Data Management" }
                            (nav_link("/app/settings/backups", "Backup"))
                            (nav_link("/app/settings/sso", "Single sign-on"))
                        }
                        h2 { "You" }
                        (nav_link("/app/account/security", "Sign-in & security"))
                        (nav_link("/app/notifications", "Notifications"))
                    }
                    main id="main" { (body) }
                }
            }
        }
    }
}
