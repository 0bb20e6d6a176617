//! The dashboard: one page and its script and style, embedded in the binary (no CDN). It polls
//! the API four times a second and shows entry points, routers, services with their servers'
//! health, middlewares, the errors of what is disabled, and live request rates.

use super::server::Response;

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// The answer for `rest` (the path after the API's base path), if it is the dashboard's.
pub fn handle(base: &str, rest: &str) -> Option<Response> {
    let asset = rest.strip_prefix("/dashboard")?;
    Some(match asset {
        "" => Response::redirect(301, format!("{base}/dashboard/")),
        "/" | "/index.html" => Response::new(200, "text/html; charset=utf-8", INDEX),
        "/app.js" => Response::new(200, "text/javascript; charset=utf-8", SCRIPT),
        "/style.css" => Response::new(200, "text/css; charset=utf-8", STYLE),
        _ => return None,
    })
}
