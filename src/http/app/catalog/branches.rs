//! The branches list, and opening, renaming and closing a branch.

use actix_web::web;
use maud::{html, Markup};

use super::{
    after_form, changed_name, confirm_off, list, next_link, one_page, row_changes, search_form,
    search_text, ListPage, ListQuery, NewRow, RowChange, Switch,
};
use crate::auth::PathIds;
use crate::domain::{BranchPatch, Catalog, Code, Name, NewBranch, TenantId};
use crate::http::app::layout::{notice, page as frame, Section, Shop};
use crate::http::app::{PageResult, Viewer};
use crate::http::{ApiError, AppState};
use crate::service::catalog;

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
    let shop = Shop::new(tenant, catalog);
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
            thead { tr { th { "Branch" } th { "Code" } th class="num" { "ID" } th { "State" } th { "Change" } } }
            tbody {
                @for (id, b) in &rows {
                    tr data-code=(b.code.as_str()) {
                        td { (b.name.as_str()) }
                        td { code { (b.code.as_str()) } }
                        td class="num" { (id) }
                        td { @if b.open { span class="state on" { "Open" } } @else { span class="state off" { "Closed" } } }
                        td { (row_changes(&format!("{base}/{id}"), &b.name, &b.code, Switch {
                            field: "open", on: b.open, turn_off: "Close branch", turn_on: "Reopen branch",
                        })) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="5" class="muted" { "No branches." } } }
            }
        }
        (next_link(&base, &q, more, rows.last().map(|(id, _)| id.get())))
    };
    frame("Branches", viewer, Some(shop), Section::Branches, body)
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
    if form.unconfirmed_off() {
        let action = format!("/app/tenants/{tenant}/branches/{branch}");
        return confirm_off(&state, &viewer, (tenant, Section::Branches), (&action, "open"), |c| {
            let name = c.branches.get(&branch).map_or("", |b| b.name.as_str());
            html! {
                "Close branch “" (name) "”? Its tills can no longer sell; its sales and totals stay, and you can reopen it."
            }
        })
        .await;
    }
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
pub(in crate::http::app) fn branch_options(catalog: &Catalog) -> Markup {
    let mut open: Vec<_> = catalog.branches.iter().filter(|(_, b)| b.open).collect();
    open.sort_unstable_by_key(|(id, _)| **id);
    html! {
        @for (id, b) in open {
            option value=(id) { (b.name.as_str()) " (" (b.code.as_str()) ")" }
        }
    }
}

const BRANCHES: (&str, ListPage) = ("branches", branches_page);
