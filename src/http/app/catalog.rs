//! Products and branches: lists with search and paging (from the catalog
//! the tenant's actor holds), add, rename, deactivate or close, and a
//! product import from a CSV file, all or nothing. Changes go through the
//! tenant's actor, as the API's do.

use std::collections::BTreeMap;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::web;
use futures_util::StreamExt;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{notice, page as frame, Section};
use super::{html, see_other, tenant_catalog, with_status, PageError, PageResult, Viewer};
use crate::auth::PathIds;
use crate::domain::{
    repeated_skus, BranchPatch, Catalog, Code, Name, NewBranch, NewProduct, ProductPatch, TenantId,
};
use crate::http::parse::{MAX_ERROR_FIELDS, MAX_ITEMS};
use crate::http::{ApiError, AppState};
use crate::service::catalog;

/// Rows a list page shows.
const PAGE_ROWS: usize = 50;
/// Largest CSV file an import reads.
const MAX_IMPORT_BYTES: usize = 1 << 20;

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

/// Whether `q` (lowercased) is in a row's name or code.
fn matches(q: &str, name: &Name, code: &Code) -> bool {
    q.is_empty()
        || name.as_str().to_lowercase().contains(q)
        || code.as_str().to_lowercase().contains(q)
}

/// `GET /app/tenants/{t}/products`.
pub async fn products(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    query: web::Query<ListQuery>,
) -> PageResult {
    list(&state, &viewer, ids, &query, products_page).await
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
    let q = search_text(query);
    let after = query.after.unwrap_or(0);
    let mut rows: Vec<_> = rows
        .filter(|(k, row)| {
            let (name, code) = texts(row);
            id(**k) > after && matches(&q, name, code)
        })
        .collect();
    rows.sort_unstable_by_key(|(k, _)| **k);
    let more = rows.len() > PAGE_ROWS;
    rows.truncate(PAGE_ROWS);
    (rows, more)
}

fn search_text(query: &ListQuery) -> String {
    query.q.as_deref().unwrap_or("").trim().to_lowercase()
}

fn products_page(
    viewer: &Viewer,
    tenant: TenantId,
    catalog: &Catalog,
    query: &ListQuery,
    outcome: &Option<Result<String, String>>,
) -> Markup {
    let q = search_text(query);
    let (rows, more) = one_page(
        catalog.products.iter(),
        query,
        |id| id.get(),
        |p| (&p.name, &p.sku),
    );
    let base = format!("/app/tenants/{tenant}/products");
    let body = html! {
        (notice(outcome))
        form method="post" action=(base) class="panel" {
            label { "SKU" input name="sku" required maxlength="64"; }
            label { "Name" input name="name" required maxlength="200"; }
            button type="submit" { "Add product" }
        }
        form method="post" action={ (base) "/import" } enctype="multipart/form-data" class="panel" {
            label { "Import a CSV file (sku,name per line; all or nothing)"
                input type="file" name="file" accept=".csv,text/csv" required; }
            button type="submit" { "Import" }
        }
        (search_form(&base, &q))
        table id="products" {
            thead { tr { th { "ID" } th { "SKU" } th { "Name" } th { "State" } th { "Change" } } }
            tbody {
                @for (id, p) in &rows {
                    tr data-sku=(p.sku.as_str()) {
                        td class="num" { (id) }
                        td { (p.sku.as_str()) }
                        td { (p.name.as_str()) }
                        td { @if p.active { "active" } @else { "inactive" } }
                        td {
                            form method="post" action={ (base) "/" (id) } class="inline" {
                                input name="name" value=(p.name.as_str()) aria-label={ "New name of " (p.sku.as_str()) } maxlength="200";
                                button type="submit" class="quiet" { "Rename" }
                            }
                            form method="post" action={ (base) "/" (id) } class="inline" {
                                input type="hidden" name="active" value=(if p.active { "false" } else { "true" });
                                button type="submit" class="quiet" { @if p.active { "Deactivate" } @else { "Activate" } }
                            }
                        }
                    }
                }
                @if rows.is_empty() { tr { td colspan="5" class="muted" { "No products." } } }
            }
        }
        (next_link(&base, &q, more, rows.last().map(|(id, _)| id.get())))
    };
    frame("Products", viewer, Some(tenant), Section::Products, body)
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
}

/// `POST /app/tenants/{t}/products`.
pub async fn add_product(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<NewRow>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let made = match new_product(&form.sku, &form.name) {
        Ok(product) => ask_products(&state, &viewer, tenant, vec![product], false).await,
        Err(problem) => Err(ApiError::validation(problem.0, problem.1)),
    };
    after_form(&state, viewer, tenant, made.map(|_| "added"), PRODUCTS).await
}

fn new_product(sku: &str, name: &str) -> Result<NewProduct, (&'static str, &'static str)> {
    let sku = Code::parse(sku.trim()).ok_or(("sku", Code::RULE))?;
    let name = Name::parse(name).ok_or(("name", Name::RULE))?;
    Ok(NewProduct { sku, name })
}

/// Makes `products` through the tenant's actor; `listed`: problems are
/// named by position (`[3].sku`), as for an import.
async fn ask_products(
    state: &AppState,
    viewer: &Viewer,
    tenant: TenantId,
    products: Vec<NewProduct>,
    listed: bool,
) -> Result<(), ApiError> {
    catalog::add_products(state.services()?, viewer.scope, tenant, products)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::from_service(e, listed))
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

const PRODUCTS: (&str, ListPage) = ("products", products_page);
const BRANCHES: (&str, ListPage) = ("branches", branches_page);

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

/// The form of a product change: a new name, or a new state.
#[derive(Deserialize)]
pub struct RowChange {
    name: Option<String>,
    active: Option<bool>,
    open: Option<bool>,
}

/// `POST /app/tenants/{t}/products/{p}`.
pub async fn change_product(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<RowChange>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let product = ids.product_or_404()?;
    let result = match changed_name(&form) {
        Ok(name) => {
            let patch = ProductPatch {
                name,
                active: form.active,
            };
            catalog::change_product(state.services()?, viewer.scope, tenant, product, patch)
                .await
                .map(|_| "changed")
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    after_form(&state, viewer, tenant, result, PRODUCTS).await
}

fn changed_name(form: &RowChange) -> Result<Option<Name>, ApiError> {
    form.name
        .as_deref()
        .map(|n| Name::parse(n).ok_or_else(|| ApiError::validation("name", Name::RULE)))
        .transpose()
}

/// `POST /app/tenants/{t}/products/import`: a CSV file of `sku,name` lines
/// (a first line `sku,name` is a header), made all or nothing; every bad
/// line is named.
pub async fn import_products(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    payload: Multipart,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let result = match read_file(payload).await {
        Ok(bytes) => match parse_import(&bytes) {
            Ok((products, lines)) => ask_products(&state, &viewer, tenant, products, true)
                .await
                .map(|()| "imported")
                .map_err(|e| by_line(e, &lines)),
            Err(problems) => Err(ApiError::Validation {
                message: "the file was not imported; nothing was changed".into(),
                fields: problems,
            }),
        },
        Err(e) => Err(e),
    };
    after_form(&state, viewer, tenant, result, PRODUCTS).await
}

/// The uploaded file's bytes. The whole upload (every part, whatever its
/// name) counts against [`MAX_IMPORT_BYTES`]; a form of ours has one part.
async fn read_file(mut payload: Multipart) -> Result<Vec<u8>, ApiError> {
    let unreadable = |e: actix_multipart::MultipartError| {
        ApiError::validation("file", &format!("is not a readable upload: {e}"))
    };
    let mut file = None;
    let mut total = 0usize;
    while let Some(part) = payload.next().await {
        let mut part = part.map_err(unreadable)?;
        let is_file = part.name() == Some("file") && file.is_none();
        let mut bytes = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(unreadable)?;
            total += chunk.len();
            if total > MAX_IMPORT_BYTES {
                return Err(ApiError::PayloadTooLarge(
                    "an import is at most 1 MiB; split the file".into(),
                ));
            }
            if is_file {
                bytes.extend_from_slice(&chunk);
            }
        }
        if is_file {
            file = Some(bytes);
        }
    }
    file.ok_or_else(|| ApiError::validation("file", "is missing"))
}

/// Line numbers of the file for each product made.
type Lines = Vec<usize>;

/// The products of a CSV file, or every problem by line.
fn parse_import(bytes: &[u8]) -> Result<(Vec<NewProduct>, Lines), BTreeMap<String, String>> {
    let mut problems = BTreeMap::new();
    let mut products = Vec::new();
    let mut lines = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    for (i, record) in reader.records().enumerate() {
        if problems.len() >= MAX_ERROR_FIELDS {
            problems.insert(
                "file".into(),
                format!("has more bad lines; the first {MAX_ERROR_FIELDS} are named"),
            );
            break;
        }
        let position = match &record {
            Ok(r) => r.position(),
            Err(e) => e.position(),
        };
        let line = position.map_or(i + 1, |p| p.line() as usize);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.insert(format!("line {line}"), format!("is not CSV: {e}"));
                continue;
            }
        };
        let cells: Vec<&str> = record.iter().collect();
        if i == 0 && cells.len() == 2 && cells[0].eq_ignore_ascii_case("sku") {
            continue;
        }
        match cells.as_slice() {
            [sku, name] => match new_product(sku, name) {
                Ok(p) => {
                    products.push(p);
                    lines.push(line);
                }
                Err((field, rule)) => {
                    problems.insert(format!("line {line}"), format!("{field} {rule}"));
                }
            },
            _ => {
                problems.insert(
                    format!("line {line}"),
                    format!("has {} fields; expected sku,name", cells.len()),
                );
            }
        }
    }
    for (i, first) in repeated_skus(&products) {
        problems.insert(
            format!("line {}", lines[i]),
            format!("repeats the sku of line {}", lines[first]),
        );
    }
    if products.is_empty() && problems.is_empty() {
        problems.insert("file".into(), "holds no products".into());
    }
    if products.len() > MAX_ITEMS {
        problems.insert(
            "file".into(),
            format!("holds more than {MAX_ITEMS} products; split it"),
        );
    }
    if problems.is_empty() {
        Ok((products, lines))
    } else {
        Err(problems)
    }
}

/// A refusal of the import's items, named by their lines in the file.
fn by_line(e: ApiError, lines: &Lines) -> ApiError {
    match e {
        ApiError::Conflict { message, fields } => ApiError::Conflict {
            message,
            fields: rename_items(fields, lines),
        },
        ApiError::Validation { message, fields } => ApiError::Validation {
            message,
            fields: rename_items(fields, lines),
        },
        other => other,
    }
}

/// `[3].sku` → `line 5: sku` (the API names items by position).
fn rename_items(fields: BTreeMap<String, String>, lines: &Lines) -> BTreeMap<String, String> {
    fields
        .into_iter()
        .map(|(field, problem)| {
            let renamed = field
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(i, rest)| {
                    let line = lines.get(i.parse::<usize>().ok()?)?;
                    Some(format!("line {line}{}", rest.replacen('.', ": ", 1)))
                });
            (renamed.unwrap_or(field), problem)
        })
        .collect()
}

/// `GET /app/tenants/{t}/branches`.
pub async fn branches(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    query: web::Query<ListQuery>,
) -> PageResult {
    list(&state, &viewer, ids, &query, branches_page).await
}

fn branches_page(
    viewer: &Viewer,
    tenant: TenantId,
    catalog: &Catalog,
    query: &ListQuery,
    outcome: &Option<Result<String, String>>,
) -> Markup {
    let q = search_text(query);
    let (rows, more) = one_page(
        catalog.branches.iter(),
        query,
        |id| id.get(),
        |b| (&b.name, &b.code),
    );
    let base = format!("/app/tenants/{tenant}/branches");
    let body = html! {
        (notice(outcome))
        form method="post" action=(base) class="panel" {
            label { "Code" input name="code" required maxlength="64"; }
            label { "Name" input name="name" required maxlength="200"; }
            button type="submit" { "Add branch" }
        }
        (search_form(&base, &q))
        table id="branches" {
            thead { tr { th { "ID" } th { "Code" } th { "Name" } th { "State" } th { "Change" } } }
            tbody {
                @for (id, b) in &rows {
                    tr data-code=(b.code.as_str()) {
                        td class="num" { (id) }
                        td { (b.code.as_str()) }
                        td { (b.name.as_str()) }
                        td { @if b.open { "open" } @else { "closed" } }
                        td {
                            form method="post" action={ (base) "/" (id) } class="inline" {
                                input name="name" value=(b.name.as_str()) aria-label={ "New name of " (b.code.as_str()) } maxlength="200";
                                button type="submit" class="quiet" { "Rename" }
                            }
                            form method="post" action={ (base) "/" (id) } class="inline" {
                                input type="hidden" name="open" value=(if b.open { "false" } else { "true" });
                                button type="submit" class="quiet" { @if b.open { "Close" } @else { "Reopen" } }
                            }
                        }
                    }
                }
                @if rows.is_empty() { tr { td colspan="5" class="muted" { "No branches." } } }
            }
        }
        (next_link(&base, &q, more, rows.last().map(|(id, _)| id.get())))
    };
    frame("Branches", viewer, Some(tenant), Section::Branches, body)
}

/// `POST /app/tenants/{t}/branches`.
pub async fn add_branch(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<NewRow>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let result = match (Code::parse(form.sku.trim()), Name::parse(&form.name)) {
        (Some(code), Some(name)) => catalog::add_branch(
            state.services()?,
            viewer.scope,
            tenant,
            NewBranch { code, name },
        )
        .await
        .map(|_| "added")
        .map_err(ApiError::from),
        (None, _) => Err(ApiError::validation("code", Code::RULE)),
        (_, None) => Err(ApiError::validation("name", Name::RULE)),
    };
    after_form(&state, viewer, tenant, result, BRANCHES).await
}

/// `POST /app/tenants/{t}/branches/{b}`.
pub async fn change_branch(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<RowChange>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let branch = ids.branch_or_404()?;
    let result = match changed_name(&form) {
        Ok(name) => {
            let patch = BranchPatch {
                name,
                open: form.open,
            };
            catalog::change_branch(state.services()?, viewer.scope, tenant, branch, patch)
                .await
                .map(|_| "changed")
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    after_form(&state, viewer, tenant, result, BRANCHES).await
}

/// The open branches as `<option>`s, by id.
pub(super) fn branch_options(catalog: &Catalog) -> Markup {
    let mut open: Vec<_> = catalog.branches.iter().filter(|(_, b)| b.open).collect();
    open.sort_unstable_by_key(|(id, _)| **id);
    html! {
        @for (id, b) in open {
            option value=(id) { (b.name.as_str()) " (" (b.code.as_str()) ")" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_names_every_bad_line_and_skips_a_header() {
        let file = b"sku,name\nA-1,Latte\nbad sku,Tea\nB-2\n\"C-3\",\"Cake, lemon\"\n";
        let problems = parse_import(file).expect_err("two bad lines");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems["line 3"].starts_with("sku "), "{problems:?}");
        assert!(
            problems["line 4"].contains("expected sku,name"),
            "{problems:?}"
        );
        let (products, lines) =
            parse_import(b"A-1,Latte\n\"C-3\",\"Cake, lemon\"\n").expect("good");
        assert_eq!(products.len(), 2);
        assert_eq!(products[1].name.as_str(), "Cake, lemon");
        assert_eq!(lines, vec![1, 2]);
        let renamed = rename_items(
            BTreeMap::from([("[1].sku".to_string(), "taken".to_string())]),
            &lines,
        );
        assert_eq!(renamed["line 2: sku"], "taken");
    }
}
