//! Till keys: make one for a branch (its token shown once, with a QR code
//! a till can scan), list them, revoke one. The service's operations do
//! the work, as for the API, so the role rule (a back office makes till
//! keys only) and the revocation promise are the same.

use actix_web::{web, HttpRequest};
use maud::{html, Markup, PreEscaped};
use qrcode::render::svg;
use qrcode::QrCode;
use serde::Deserialize;

use super::catalog::{branch_options, refusal};
use super::layout::{notice, page as frame, Section, Shop};
use super::{html, see_other, tenant_catalog, with_status, PageResult, Viewer};
use crate::auth::PathIds;
use crate::domain::{BranchId, KeyId, Name, Role, Timestamp};
use crate::http::keys::path_key_id;
use crate::http::{ApiError, AppState};
use crate::service::keys::{self as keys, KeyListing};
use crate::service::ServiceError;

/// Keys a page lists.
const PAGE_KEYS: usize = 100;

#[derive(Deserialize, Default)]
pub struct KeysQuery {
    after: Option<String>,
    done: Option<String>,
}

/// `GET /app/tenants/{t}/keys`.
pub async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    query: web::Query<KeysQuery>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let outcome = (query.done.as_deref() == Some("revoked"))
        .then(|| Ok("Revoked: every server refuses the key within 2 seconds.".to_string()));
    let after = query.after.as_deref().and_then(KeyId::parse);
    let catalog = tenant_catalog(&state, tenant).await?;
    let shop = Shop::new(tenant, &catalog);
    let body = keys_body(&state, shop, after, &outcome, None).await?;
    Ok(html(frame(
        "Till keys",
        &viewer,
        Some(shop),
        Section::Keys,
        body,
    )))
}

/// The page's content: a key just made (its token, once), the form, the list.
async fn keys_body(
    state: &AppState,
    shop: Shop<'_>,
    after: Option<KeyId>,
    outcome: &Option<Result<String, String>>,
    made: Option<(&KeyListing, &str)>,
) -> Result<Markup, ApiError> {
    let (tenant, catalog) = (shop.id, shop.catalog);
    // Back-office and operator keys are not a till's business: this page
    // lists till keys only.
    let till = Some(Role::Till);
    let rows = keys::list_keys(state.services()?, tenant, till, after, PAGE_KEYS + 1).await?;
    let more = rows.len() > PAGE_KEYS;
    let tills: Vec<&KeyListing> = rows.iter().take(PAGE_KEYS).collect();
    let base = format!("/app/tenants/{tenant}/keys");
    Ok(html! {
        (notice(outcome))
        @if let Some((key, token)) = made {
            section aria-labelledby="new-key" class="card" {
                h2 id="new-key" { "New till key “" (key.label) "”" }
                p { "Copy it or scan it into the till now: it is shown only this once." }
                p class="token" id="new-token" { (token) }
                div class="qr" role="img" aria-label="QR code of the new key's token" { (qr(token)) }
            }
        }
        form method="post" action=(base) class="panel" {
            label { "Label" input name="label" required maxlength="200" placeholder="Till 3, Berlin"; }
            label { "Branch"
                select name="branch" {
                    option value="" { "any branch" }
                    (branch_options(catalog))
                }
            }
            button type="submit" { "Make till key" }
        }
        table id="keys" {
            thead { tr { th { "Label" } th { "Branch" } th { "Made" } th { "State" } th { "Key id" } th { span class="visually-hidden" { "Change" } } } }
            tbody {
                @for key in &tills {
                    tr data-key=(key.id) {
                        td { (key.label) }
                        td { @match key.scope.branch() {
                            Some(b) => (catalog.branches.get(&b).map_or("", |x| x.name.as_str())),
                            None => span class="muted" { "Any branch" },
                        } }
                        td { (shop.time(Timestamp::from_naive_utc(key.created))) }
                        @match key.revoked {
                            Some(when) => {
                                td { span class="state off" { "Revoked" } " " span class="muted" { (shop.time(Timestamp::from_naive_utc(when))) } }
                            }
                            None => td { span class="state on" { "Active" } },
                        }
                        td { code { (key.id) } }
                        td {
                            @if key.revoked.is_none() {
                                form method="post" action={ (base) "/" (key.id) "/revoke" } class="inline" {
                                    button type="submit" class="quiet" { "Revoke" }
                                }
                            }
                        }
                    }
                }
                @if tills.is_empty() { tr { td colspan="6" class="muted" { "No till keys yet." } } }
            }
        }
        @if let (true, Some(last)) = (more, rows.get(PAGE_KEYS - 1)) {
            p { a rel="next" href={ (base) "?after=" (last.id) } { "Next page" } }
        }
    })
}

/// The token as a QR code (SVG drawn by `qrcode`: rectangles only).
fn qr(token: &str) -> Markup {
    let Ok(code) = QrCode::new(token.as_bytes()) else {
        return html! {};
    };
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let svg = image.find("<svg").map_or("", |at| &image[at..]);
    PreEscaped(svg.to_string())
}

#[derive(Deserialize)]
pub struct NewTill {
    label: String,
    branch: Option<String>,
}

/// `POST /app/tenants/{t}/keys`: a till key, answered on the page itself
/// (the token is never put in a URL).
pub async fn create(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<NewTill>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let branch = match form.branch.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(b) => BranchId::parse(b)
            .map(Some)
            .ok_or_else(|| ServiceError::NotABranch.into()),
    };
    let made = match (branch, Name::parse(&form.label)) {
        (Ok(branch), Some(label)) => match state.services() {
            Ok(services) => keys::make_key(
                services,
                viewer.scope,
                tenant,
                Role::Till,
                branch,
                label.as_str(),
            )
            .await
            .map_err(ApiError::from),
            Err(e) => Err(e),
        },
        (Err(e), _) => Err(e),
        (_, None) => Err(ApiError::validation("label", Name::RULE)),
    };
    let catalog = tenant_catalog(&state, tenant).await?;
    let shop = Shop::new(tenant, &catalog);
    let (body, status) = match made {
        Ok((key, token)) => {
            let made = Some((&key, token.as_str()));
            (keys_body(&state, shop, None, &None, made).await?, None)
        }
        Err(e) => {
            let (status, message) = refusal(e)?;
            let outcome = Some(Err(message));
            (
                keys_body(&state, shop, None, &outcome, None).await?,
                Some(status),
            )
        }
    };
    let res = html(frame("Till keys", &viewer, Some(shop), Section::Keys, body));
    Ok(match status {
        Some(status) => with_status(res, status),
        None => res,
    })
}

/// `POST /app/tenants/{t}/keys/{keyID}/revoke`.
pub async fn revoke(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    req: HttpRequest,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    keys::revoke_key(state.services()?, viewer.scope, tenant, path_key_id(&req)?).await?;
    Ok(see_other(&format!(
        "/app/tenants/{tenant}/keys?done=revoked"
    )))
}
