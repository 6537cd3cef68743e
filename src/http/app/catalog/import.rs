//! A product import from a CSV file of `sku,name` lines, all or nothing.

use super::products::{ask_products, new_product, PRODUCTS};
use std::collections::BTreeMap;

use actix_multipart::Multipart;
use actix_web::web;
use futures_util::StreamExt;

use super::after_form;
use crate::auth::PathIds;
use crate::domain::{repeated_skus, NewProduct};
use crate::http::app::{PageResult, Viewer};
use crate::http::parse::{MAX_ERROR_FIELDS, MAX_ITEMS};
use crate::http::{ApiError, AppState};

/// Largest CSV file an import reads.
const MAX_IMPORT_BYTES: usize = 1 << 20;

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
