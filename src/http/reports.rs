//! `GET /v1/tenants/{tenantID}/reports/sales`: a tenant's sales by day,
//! hour, branch and product in its zone, as JSON or (`Accept: text/csv`)
//! CSV for spreadsheets. Served from MySQL on the reports' own pool, after
//! the commits it answers about.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::parse::report_query;
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{ReportPage, ReportQuery, ReportRow};
use crate::service::reports::{run_report, ReportKind};
use crate::service::tenants::time_zone;

pub async fn sales_report(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let core = state.services()?;
    let tenant = ids.tenant_or_404()?;
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| ApiError::validation("query", "is not a valid query string"))?;
    // The tenant's own zone unless the client names one. With pods it is
    // asked either way: that makes the tenant's pod learn a tenant made
    // elsewhere before the report reads its rows.
    let named = pairs.iter().any(|(name, _)| name == "tz");
    let own = match !named || core.control.is_some() {
        true => Some(time_zone(core, tenant).await?),
        false => None,
    };
    let zone = match (named, own) {
        (false, Some(own)) => own,
        _ => chrono_tz::UTC,
    };
    let query = report_query(tenant, zone, &pairs)?;
    let page = run_report(core, ReportKind::Report, query.clone()).await?;
    if wants_csv(&req) {
        let mut res = HttpResponse::Ok();
        res.content_type("text/csv; charset=utf-8");
        if let Some(next) = page.next {
            res.insert_header((header::LINK, next_link(&req, &next.cursor())));
        }
        return Ok(res.body(csv(&query, &page)));
    }
    Ok(HttpResponse::Ok().json(answer(&query, &page)))
}

/// Whether `Accept` asks for CSV (a spreadsheet's download).
fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|m| m.split(';').next().unwrap_or("").trim() == "text/csv")
        })
}

/// `<this URL with cursor=...>; rel="next"` for CSV pages (no body field to
/// carry the cursor). The cursor is digits, `-` and `_` only.
fn next_link(req: &HttpRequest, cursor: &str) -> String {
    let kept: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
        .collect();
    let mut query = kept.join("&");
    if !query.is_empty() {
        query.push('&');
    }
    format!("<{}?{query}cursor={cursor}>; rel=\"next\"", req.path())
}

fn answer(query: &ReportQuery, page: &ReportPage) -> Value {
    let rows: Vec<Value> = page
        .rows
        .iter()
        .map(|row| {
            Value::Object(
                fields(query, row)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        })
        .collect();
    let mut body = json!({
        "tenantID": query.tenant,
        "currency": page.currency,
        "from": query.from_text(),
        "to": query.to_text(),
        "tz": query.tz.name(),
        "groupBy": query.group_by.names(),
        "rows": rows,
    });
    if let Some(next) = page.next {
        body["nextCursor"] = json!(next.cursor());
    }
    body
}

/// A row's fields in column order: its group's keys, then the sums.
fn fields(query: &ReportQuery, row: &ReportRow) -> Vec<(&'static str, Value)> {
    let group = query.group_by;
    let mut out = Vec::with_capacity(8);
    if let Some(day) = row.key.day(group) {
        out.push(("day", json!(day)));
    }
    if let Some(hour) = row.key.hour(group) {
        out.push(("hour", json!(hour)));
    }
    if let Some(branch) = row.key.branch {
        out.push(("branchID", json!(branch)));
        out.push(("branchName", json!(row.branch_name)));
    }
    if let Some(product) = row.key.product {
        out.push(("productID", json!(product)));
        out.push(("productName", json!(row.product_name)));
    }
    out.push(("quantitySold", json!(row.quantity)));
    out.push(("totalSales", json!(row.total)));
    out.push(("salesCount", json!(row.count)));
    out.push(("quantityRefunded", json!(row.refunded)));
    out.push(("refunds", json!(row.refunds)));
    out.push(("refundCount", json!(row.refund_count)));
    out.push(("netSales", json!(row.net())));
    out
}

/// The sums' columns, in order (money ones are written unquoted in CSV).
const SUM_COLUMNS: [&str; 7] = [
    "quantitySold",
    "totalSales",
    "salesCount",
    "quantityRefunded",
    "refunds",
    "refundCount",
    "netSales",
];
const MONEY_COLUMNS: [&str; 3] = ["totalSales", "refunds", "netSales"];

/// The rows as CSV (RFC 4180): a header line, then one line per row.
pub(super) fn csv(query: &ReportQuery, page: &ReportPage) -> String {
    let group = query.group_by;
    let mut header: Vec<&str> = Vec::new();
    for name in group.names() {
        match name {
            "branch" => header.extend(["branchID", "branchName"]),
            "product" => header.extend(["productID", "productName"]),
            time => header.push(time),
        }
    }
    header.extend(SUM_COLUMNS);
    let mut out = header.join(",");
    out.push_str("\r\n");
    for row in &page.rows {
        let cells: Vec<String> = fields(query, row)
            .into_iter()
            .map(|(name, v)| match v {
                // Money is ours, digits and a point: a spreadsheet reads it as a number.
                Value::String(s) if MONEY_COLUMNS.contains(&name) => s,
                Value::String(s) => quoted(&s),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A text cell of the CSV: always quoted (quotes doubled), so nothing in
/// it ends the cell, whatever separator the spreadsheet splits on (`,`
/// here; `;` in German or French Excel; a tab); a leading `= + - @`, tab
/// or carriage return gets a `'` so a spreadsheet never runs a name as a
/// formula.
fn quoted(text: &str) -> String {
    let guard = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        "'"
    } else {
        ""
    };
    format!("\"{guard}{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn every_text_cell_is_quoted_and_formulas_are_defused() {
        assert_eq!(quoted("Latte"), "\"Latte\"");
        assert_eq!(quoted("Tea, green"), "\"Tea, green\"");
        assert_eq!(quoted("12\" pizza"), "\"12\"\" pizza\"");
        assert_eq!(quoted("two\nlines"), "\"two\nlines\"");
        assert_eq!(quoted("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        // A spreadsheet that splits on `;` keeps this one cell.
        assert_eq!(
            quoted("Latte;=cmd|' /C calc'!A0"),
            "\"Latte;=cmd|' /C calc'!A0\""
        );
        assert_eq!(quoted("\t@SUM(1)"), "\"'\t@SUM(1)\"");
    }
}
