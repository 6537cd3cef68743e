//! Products and branches: lists with search and paging (from the catalog
//! the tenant's actor holds), add, rename, deactivate or close, and a
//! product import from a CSV file, all or nothing. Changes go through the
//! tenant's actor, as the API's do. What both lists share is here; each
//! list, and the import, in a file of its own.

mod branches;
mod import;
mod products;

pub(super) use branches::branch_options;
pub use branches::{add_branch, branches, change_branch};
pub use import::import_products;
pub use products::{add_product, change_product, products};

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;

use super::{html, see_other, tenant_catalog, with_status, PageError, PageResult, Viewer};
use crate::auth::PathIds;
use crate::domain::{Catalog, Code, Name, RowFilter, TenantId};
use crate::http::app::layout::{page as frame, Section, Shop};
use crate::http::{ApiError, AppState};

/// Rows a list page shows.
const PAGE_ROWS: usize = 50;

/// A list's query: a search text and the last id of the page before.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<u64>,
    done: Option<String>,
}

/// What a finished form says on the page it returns to (fixed texts: a
/// link cannot make the page say anything else).
fn done_text(code: Option<&str>) -> Option<Result<String, String>> {
    let text = match code? {
        "added" => "Added.",
        "changed" => "Saved.",
        "imported" => "Imported: every line of the file is in the catalog.",
        _ => return None,
    };
    Some(Ok(text.to_string()))
}

/// A list page: `page` drawn from the tenant's catalog.
async fn list(
    state: &AppState,
    viewer: &Viewer,
    ids: PathIds,
    query: &ListQuery,
    page: ListPage,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let catalog = tenant_catalog(state, tenant).await?;
    let outcome = done_text(query.done.as_deref());
    Ok(html(page(viewer, tenant, &catalog, query, &outcome)))
}

type ListPage =
    fn(&Viewer, TenantId, &Catalog, &ListQuery, &Option<Result<String, String>>) -> Markup;

/// One page of a list: the rows after `query`'s `after` whose name or code
/// holds its search text, by id, and whether more follow.
fn one_page<'a, K: Copy + Ord, T>(
    rows: impl Iterator<Item = (&'a K, &'a T)>,
    query: &ListQuery,
    id: impl Fn(K) -> u64,
    texts: impl Fn(&T) -> (&Name, &Code),
) -> (Vec<(&'a K, &'a T)>, bool) {
    let filter = RowFilter {
        q: search_text(query),
        state: None,
        after: query.after.unwrap_or(0),
        limit: PAGE_ROWS,
    };
    filter.page(rows, |k, row| {
        let (name, code) = texts(row);
        (id(k), name, code, true)
    })
}

fn search_text(query: &ListQuery) -> String {
    query.q.as_deref().unwrap_or("").trim().to_lowercase()
}

/// A row's on/off state as its form changes it: the form field, the
/// state now, and the buttons' words.
struct Switch {
    field: &'static str,
    on: bool,
    turn_off: &'static str,
    turn_on: &'static str,
}

/// A list row's forms, posted to `action`: a new name, and the switch.
fn row_changes(action: &str, name: &Name, code: &Code, switch: Switch) -> Markup {
    html! {
        form method="post" action=(action) class="inline" {
            input name="name" value=(name.as_str()) aria-label={ "New name of " (code.as_str()) } maxlength="200";
            button type="submit" class="quiet" { "Rename" }
        }
        form method="post" action=(action) class="inline" {
            input type="hidden" name=(switch.field) value=(if switch.on { "false" } else { "true" });
            button type="submit" class="quiet" { @if switch.on { (switch.turn_off) } @else { (switch.turn_on) } }
        }
    }
}

fn search_form(base: &str, q: &str) -> Markup {
    html! {
        form method="get" action=(base) class="panel" role="search" {
            label { "Search name or code" input type="search" name="q" value=(q); }
            button type="submit" class="quiet" { "Search" }
        }
    }
}

fn next_link(base: &str, q: &str, more: bool, last: Option<u64>) -> Markup {
    html! {
        @if let (true, Some(last)) = (more, last) {
            p { a rel="next" href={ (base) "?q=" (urlencode(q)) "&after=" (last) } { "Next page" } }
        }
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The form fields of a new product or branch.
#[derive(Deserialize)]
pub struct NewRow {
    #[serde(alias = "code")]
    sku: String,
    name: String,
    /// Products only: a list price (blank: none).
    price: Option<String>,
}

/// Back to a list (`list`, drawn by `page`): with a message when the form did its work,
/// or the same page with why it did not (a refusal of the input, 409 or
/// 422; anything else is an error page).
async fn after_form(
    state: &AppState,
    viewer: Viewer,
    tenant: TenantId,
    result: Result<&str, ApiError>,
    (list, page): (&str, ListPage),
) -> PageResult {
    let problem = match result {
        Ok(done) => {
            return Ok(see_other(&format!(
                "/app/tenants/{tenant}/{list}?done={done}"
            )))
        }
        Err(e) => refusal(e)?,
    };
    let catalog = tenant_catalog(state, tenant).await?;
    let page = page(
        &viewer,
        tenant,
        &catalog,
        &ListQuery::default(),
        &Some(Err(problem.1)),
    );
    Ok(with_status(html(page), problem.0))
}

/// An input refusal as a status and a message with its fields; other
/// errors stay errors.
pub(super) fn refusal(e: ApiError) -> Result<(StatusCode, String), PageError> {
    let fields = match &e {
        ApiError::Validation { fields, .. } | ApiError::Conflict { fields, .. } => fields.clone(),
        _ => return Err(PageError(e)),
    };
    let status = actix_web::ResponseError::status_code(&e);
    Ok((status, explain(&e.to_string(), &fields)))
}

fn explain(message: &str, fields: &BTreeMap<String, String>) -> String {
    let mut text = message.to_string();
    for (field, problem) in fields {
        text.push_str(&format!("\n{field}: {problem}"));
    }
    text
}

/// The form of a product or branch change: a new name, a new state, or
/// (products) a new list price. Turning a row off asks first: the form
/// comes back to a confirmation unless it says `confirmed=yes`.
#[derive(Deserialize)]
pub struct RowChange {
    name: Option<String>,
    active: Option<bool>,
    open: Option<bool>,
    price: Option<String>,
    confirmed: Option<String>,
}

impl RowChange {
    /// Whether this change turns a row off without its confirmation yet.
    fn unconfirmed_off(&self) -> bool {
        let off = self.active == Some(false) || self.open == Some(false);
        off && self.confirmed.as_deref() != Some("yes")
    }
}

/// The question before a row is turned off (no script needed: the form
/// comes back here, and only this page's button sends `confirmed=yes`).
async fn confirm_off(
    state: &AppState,
    viewer: &Viewer,
    (tenant, section): (TenantId, Section),
    (action, field): (&str, &str),
    question: impl FnOnce(&Catalog) -> Markup,
) -> PageResult {
    let catalog = tenant_catalog(state, tenant).await?;
    let shop = Shop::new(tenant, &catalog);
    let question = question(&catalog);
    let back = action.rsplit_once('/').map_or(action, |(list, _)| list);
    let body = html! {
        section class="card confirm" aria-labelledby="confirm" {
            h2 id="confirm" { (question) }
            form method="post" action=(action) class="inline" {
                input type="hidden" name=(field) value="false";
                input type="hidden" name="confirmed" value="yes";
                button type="submit" class="danger" { "Yes, " (if field == "open" { "close branch" } else { "deactivate" }) }
            }
            " "
            a href=(back) { "Cancel" }
        }
    };
    Ok(html(frame(
        "Please confirm",
        viewer,
        Some(shop),
        section,
        body,
    )))
}

fn changed_name(form: &RowChange) -> Result<Option<Name>, ApiError> {
    form.name
        .as_deref()
        .map(|n| Name::parse(n).ok_or_else(|| ApiError::validation("name", Name::RULE)))
        .transpose()
}
