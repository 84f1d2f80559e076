//! The service-window page (窗口核验页): one HTML page, a stylesheet, a script and an
//! icon, compiled into the binary and served by every node, department or observer, at
//! `/` and `/assets/{file}`.
//!
//! The page is a client of the public API like any other: it verifies through
//! `POST /v1/verify` and reads `GET /healthz`, so this module adds no way to reach the
//! ledger. It must never load anything from another origin (no CDN, no web fonts, no
//! analytics): a window's network may reach only its node, and the Content-Security-Policy
//! sent with every response forbids it anyway. The only server-side step is filling the
//! node's own department and region names into the header and giving each asset URL a
//! content tag, so a browser can cache assets for good and still picks up a new binary's.

use std::sync::OnceLock;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use huren_api::ErrorBody;
use huren_render::card::escape;

use crate::api::error::ApiError;
use crate::api::AppState;

/// Only this origin: scripts, styles, images and API calls. `blob:` is for the camera
/// preview; inline scripts and styles are refused.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
     media-src 'self' blob:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Assets are addressed as `/assets/NAME?v=TAG`; a request with the current tag may be
/// cached for good, anything else is revalidated.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
const CACHE_REVALIDATE: &str = "no-cache";

const PAGE: &str = include_str!("../assets/window.html");

pub(crate) struct Asset {
    pub(crate) name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

pub(crate) const ASSETS: [Asset; 3] = [
    Asset {
        name: "window.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/window.css"),
    },
    Asset {
        name: "window.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/window.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../assets/icon.svg"),
    },
];

/// The content tag of each asset (first 8 bytes of its SHA-256, hex), in `ASSETS` order.
fn tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| hex::encode(&Sha256::digest(a.bytes)[..8]))
            .collect()
    })
}

/// Who this node is, as the header shows it.
struct NodeLabel<'a> {
    network: &'a str,
    /// Empty on an observer node.
    department: &'a str,
    department_name: &'a str,
    region: &'a str,
    region_name: &'a str,
}

/// The page with the node's names and the tagged asset URLs filled in.
fn render(node: &NodeLabel<'_>) -> String {
    let mut page = PAGE.to_owned();
    for (asset, tag) in ASSETS.iter().zip(tags()) {
        let url = format!("/assets/{}?v={tag}", asset.name);
        page = page.replace(&format!("{{{{asset:{}}}}}", asset.name), &url);
    }
    let (department, department_name) = if node.department.is_empty() {
        ("observer", "观察节点 Observer node")
    } else {
        (node.department, node.department_name)
    };
    for (key, value) in [
        ("network", node.network),
        ("department", department),
        ("department_name", department_name),
        ("region", node.region),
        ("region_name", node.region_name),
    ] {
        page = page.replace(&format!("{{{{{key}}}}}"), &escape(value));
    }
    page
}

/// Headers every page response carries: no other origin, no sniffing, no framing, no
/// referrer (the URL may carry nothing personal, but the habit is cheap).
fn guard(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"),
    );
}

/// `GET /`: the service-window page.
#[utoipa::path(get, path = "/", tag = "page",
    responses((status = 200, description = "The service-window page, with this node's department and region filled in; always revalidated", content_type = "text/html")))]
pub async fn index(State(state): State<AppState>) -> Response {
    let network = state.net();
    let net = network.document();
    let department = state.department.as_ref();
    let region_name = network
        .region(&state.region)
        .map_or("", |r| r.name.as_str());
    let department_name = department
        .and_then(|d| network.department(d))
        .map_or("", |d| d.name.as_str());
    let department = department.map(ToString::to_string).unwrap_or_default();
    let region = state.region.to_string();
    let page = render(&NodeLabel {
        network: &net.network,
        department: &department,
        department_name,
        region: &region,
        region_name,
    });
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page names the current asset tags, so it is always revalidated.
            (header::CACHE_CONTROL, CACHE_REVALIDATE),
        ],
        page,
    )
        .into_response();
    guard(response.headers_mut());
    response
}

/// `GET /assets/{file}`: a stylesheet, script or icon of the page.
#[utoipa::path(get, path = "/assets/{file}", tag = "page",
    params(
        ("file" = String, Path, description = "The asset's name, as the page links it, e.g. `window.css`"),
        ("v" = Option<String>, Query, description = "The asset's content tag, as the page links it; with the current tag the answer may be cached for good"),
    ),
    responses(
        (status = 200, description = "The asset",
            content(("text/css"), ("text/javascript"), ("image/svg+xml")),
            headers(
                ("ETag" = String, description = "The asset's content tag, quoted"),
                ("Cache-Control" = String, description = "`immutable` for the current tag, `no-cache` otherwise"))),
        (status = 304, description = "Not modified: the request's If-None-Match names the current tag",
            headers(
                ("ETag" = String, description = "The asset's content tag, quoted"),
                ("Cache-Control" = String, description = "`immutable` for the current tag, `no-cache` otherwise"))),
        (status = 404, description = "`not_found`: no asset by that name", body = ErrorBody)))]
pub async fn asset(
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some((asset, tag)) = ASSETS.iter().zip(tags()).find(|(a, _)| a.name == file) else {
        return ApiError::new(
            huren_api::ErrorCode::NotFound,
            format!("no asset named {file:?}"),
        )
        .into_response();
    };
    let etag = format!("\"{tag}\"");
    let cache = if query.as_deref() == Some(&format!("v={tag}")) {
        CACHE_IMMUTABLE
    } else {
        CACHE_REVALIDATE
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    guard(h);
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    fn label<'a>(department: &'a str) -> NodeLabel<'a> {
        NodeLabel {
            network: "huren-example",
            department,
            department_name: "广东省公安厅交通管理局",
            region: "440000",
            region_name: "广东省 Guangdong",
        }
    }

    #[test]
    fn page_names_the_node_and_every_asset_with_its_tag() {
        let page = render(&label("gd.transport"));
        assert!(page.contains("广东省公安厅交通管理局"));
        assert!(page.contains("gd.transport"));
        assert!(page.contains("广东省 Guangdong"));
        for (asset, tag) in ASSETS.iter().zip(tags()) {
            assert!(
                page.contains(&format!("/assets/{}?v={tag}", asset.name)),
                "{} is not linked",
                asset.name
            );
        }
        assert!(!page.contains("{{"), "a placeholder is left: {page}");
    }

    #[test]
    fn observer_page_says_observer() {
        let page = render(&label(""));
        assert!(page.contains("观察节点 Observer node"));
        assert!(!page.contains("广东省公安厅交通管理局"));
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let mut l = label("gd.transport");
        l.department_name = "<script>alert(1)</script>";
        assert!(!render(&l).contains("<script>alert"));
    }

    #[test]
    fn page_loads_nothing_from_another_origin() {
        let all = [PAGE.as_bytes()]
            .into_iter()
            .chain(ASSETS.iter().map(|a| a.bytes));
        for bytes in all {
            let text = String::from_utf8_lossy(bytes);
            for needle in ["http://", "https://", "//cdn", "@import"] {
                // The SVG namespace URI is an identifier, not a fetch.
                let hits = text
                    .match_indices(needle)
                    .filter(|(i, _)| !text[*i..].starts_with("http://www.w3.org/2000/svg"))
                    .count();
                assert_eq!(hits, 0, "{needle} in an asset");
            }
        }
    }

    fn router(department: &str) -> (axum::Router, huren_testkit::Founded) {
        let f = crate::api::tests::fixture_with(department, |c| {
            c.region = Some(huren_core::RegionCode::parse("310000").expect("region"))
        });
        (f.router, f.dir)
    }

    async fn get(router: &axum::Router, uri: &str, etag: Option<&str>) -> Response {
        let mut req = Request::builder().uri(uri);
        if let Some(e) = etag {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        router
            .clone()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    fn header_of(r: &Response, name: header::HeaderName) -> &str {
        r.headers()
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    #[tokio::test]
    async fn every_node_serves_the_page_and_its_assets() {
        for department in ["sh.transport", ""] {
            let (router, _dir) = router(department);
            let r = get(&router, "/", None).await;
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(
                header_of(&r, header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert!(header_of(&r, header::CONTENT_SECURITY_POLICY).contains("default-src 'none'"));
            let body = axum::body::to_bytes(r.into_body(), 1 << 20)
                .await
                .expect("body");
            let page = String::from_utf8(body.to_vec()).expect("utf-8");
            assert!(page.contains("上海市 Shanghai"), "region name missing");
            if department.is_empty() {
                assert!(page.contains("观察节点"));
            } else {
                assert!(page.contains("上海市公安局交通警察总队"));
            }
        }
        let (router, _dir) = router("sh.transport");
        for (asset, tag) in ASSETS.iter().zip(tags()) {
            let tagged = format!("/assets/{}?v={tag}", asset.name);
            let r = get(&router, &tagged, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{tagged}");
            assert_eq!(header_of(&r, header::CONTENT_TYPE), asset.content_type);
            assert_eq!(header_of(&r, header::CACHE_CONTROL), CACHE_IMMUTABLE);
            let etag = header_of(&r, header::ETAG).to_owned();
            let r = get(&router, &format!("/assets/{}", asset.name), None).await;
            assert_eq!(header_of(&r, header::CACHE_CONTROL), CACHE_REVALIDATE);
            let r = get(&router, &tagged, Some(&etag)).await;
            assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        }
        let r = get(&router, "/assets/..%2Fsecret", None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = get(&router, "/assets/missing.js", None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
