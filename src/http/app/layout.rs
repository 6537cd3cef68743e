//! The frame every page shares (head, navigation, sign-out), the error
//! page, and the embedded stylesheet and script.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};

use super::Viewer;
use crate::domain::{Catalog, Money, TenantId, Timestamp};

/// The tenant a page is about: its header names the shop, its currency
/// and the zone its days and times are in.
#[derive(Clone, Copy)]
pub struct Shop<'a> {
    pub id: TenantId,
    pub catalog: &'a Catalog,
}

impl<'a> Shop<'a> {
    pub fn new(id: TenantId, catalog: &'a Catalog) -> Shop<'a> {
        Shop { id, catalog }
    }

    /// Money as the shop's people read it (`€1,234.50`).
    pub fn money(&self, amount: Money) -> String {
        self.catalog.currency.format(amount)
    }

    /// An instant in the shop's zone, to the minute (`6 Dec 2026, 09:14`).
    pub fn time(&self, at: Timestamp) -> String {
        at.naive_utc()
            .and_utc()
            .with_timezone(&self.catalog.time_zone)
            .format("%-d %b %Y, %H:%M")
            .to_string()
    }
}

/// The stylesheet and the live-update script, in the binary. Their names
/// carry a version: a new release changes the name, so browsers may keep
/// them for a year.
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "app-2.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "live-2.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/live.js"),
    ),
];

pub const STYLESHEET: &str = "/app/static/app-2.css";
pub const LIVE_SCRIPT: &str = "/app/static/live-2.js";

/// `GET /app/static/{file}`.
pub async fn asset(req: HttpRequest) -> HttpResponse {
    let name = req.match_info().get("file").unwrap_or("");
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(*body),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such file"),
    }
}

/// Which section of a tenant's pages is open.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Sales,
    Products,
    Branches,
    Keys,
    Returns,
    Webhooks,
    Operator,
}

/// A whole page: `title`, the navigation for `viewer` (the tenant's
/// sections when `tenant` is set), and `body`.
pub fn page(
    title: &str,
    viewer: &Viewer,
    shop: Option<Shop>,
    open: Section,
    body: Markup,
) -> Markup {
    framed(title, viewer, shop, open, None, body)
}

/// A page that the browser loads again from `path` every `seconds` (a
/// dashboard that stays current without a script). The reload is marked
/// as such, so it does not renew the session: an open dashboard does not
/// keep a session alive past its idle limit.
pub fn refreshing_page(
    title: &str,
    viewer: &Viewer,
    shop: Option<Shop>,
    open: Section,
    reload: (u32, &str),
    body: Markup,
) -> Markup {
    let refresh = format!("{};url={}?{}", reload.0, reload.1, super::AUTOMATIC);
    framed(title, viewer, shop, open, Some(refresh), body)
}

fn framed(
    title: &str,
    viewer: &Viewer,
    shop: Option<Shop>,
    open: Section,
    refresh: Option<String>,
    body: Markup,
) -> Markup {
    let sections = [
        (Section::Overview, "", "Overview"),
        (Section::Sales, "sales", "Sales"),
        (Section::Products, "products", "Products"),
        (Section::Branches, "branches", "Branches"),
        (Section::Keys, "keys", "Till keys"),
        (Section::Returns, "returns", "Returns"),
        (Section::Webhooks, "webhooks", "Webhooks"),
    ];
    document(
        title,
        refresh,
        html! {
            header {
                @if let Some(shop) = shop {
                    div class="shop" {
                        strong id="shop-name" { (shop.catalog.name) }
                        span class="muted" {
                            " · " (shop.catalog.currency.code()) " · " (shop.catalog.time_zone.name())
                            @if viewer.is_operator() { " · viewed by the operator" }
                        }
                    }
                }
                nav aria-label="Sections" {
                    @if let Some(t) = shop.map(|s| s.id) {
                        @for (section, path, label) in sections {
                            a href={ "/app/tenants/" (t) "/" (path) }
                              aria-current=[(section == open).then_some("page")] { (label) }
                        }
                    }
                    @if viewer.is_operator() {
                        a href="/app/operator"
                          aria-current=[(open == Section::Operator).then_some("page")] { "Operator" }
                    }
                }
                @if viewer.key_id.is_some() {
                    form method="post" action="/app/session/end" class="sign-out" {
                        button type="submit" { "Sign out" }
                    }
                }
            }
            main {
                h1 { (title) }
                (body)
            }
        },
    )
}

/// The document around a page's content.
pub fn shell(title: &str, content: Markup) -> Markup {
    document(title, None, content)
}

fn document(title: &str, refresh: Option<String>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // Pages that follow the sales reload themselves only
                // without scripts; their script updates them in place.
                @if let Some(refresh) = refresh {
                    noscript { meta http-equiv="refresh" content=(refresh); }
                }
                title { (title) " · POS back office" }
                link rel="stylesheet" href=(STYLESHEET);
            }
            body { (content) }
        }
    }
}

/// An error as a page.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    shell(
        title,
        html! {
            main {
                h1 { (status.as_u16()) " " (title) }
                p role="alert" { (message) }
                p { a href="/app/" { "Back to the back office" } }
            }
        },
    )
}

/// A message above a page's content: what a form did, or why it did not.
pub fn notice(outcome: &Option<Result<String, String>>) -> Markup {
    html! {
        @match outcome {
            Some(Ok(done)) => p class="notice done" role="status" { (done) },
            Some(Err(problem)) => p class="notice problem" role="alert" { (problem) },
            None => {},
        }
    }
}
