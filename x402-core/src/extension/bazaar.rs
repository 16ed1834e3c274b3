//! The `bazaar` discovery extension (x402-spec §1.5 and "Other extensions").
//!
//! - **Sellers** declare how to call a resource with the typed [`Bazaar`] builder: an HTTP query
//!   (`GET`/`HEAD`/`DELETE`), an HTTP body (`POST`/`PUT`/`PATCH` with `json`, `form-data` or
//!   `text`) or an MCP tool, with input and output examples and JSON Schemas and an optional
//!   route template. [`Bazaar::declaration`] is the `{"info", "schema", "routeTemplate"?}` object
//!   the reference's `declareDiscoveryExtension` writes for the same configuration, member for
//!   member; [`check`] is what start-up validation and the facilitator apply. Per request the
//!   seller [`enrich`]es it with the request's method and the route's path parameters.
//! - **Facilitators** catalog the resources they have settled for ([`catalog_entry`]) and list
//!   them ([`Bazaar`] catalogue: [`super::catalog`]). Only a settled payment is cataloged, and
//!   only what passes [`check`] and the size and URL bounds here.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::catalog::{CatalogEntry, normalize_pay_to};
use super::{Declaration, JsonObject, iso8601, read_extensions, schema};
use crate::wire::{DiscoveryItem, LastUpdated, PaymentPayloadV2, PaymentRequirementsV2, Raw};
use crate::{UnixTime, X402Version};

/// The extension's key.
pub const BAZAAR: &str = "bazaar";

/// The JSON Schema dialect declarations name.
pub const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// HTTP methods whose input is a query string.
pub const QUERY_METHODS: [&str; 3] = ["GET", "HEAD", "DELETE"];
/// HTTP methods whose input is a body.
pub const BODY_METHODS: [&str; 3] = ["POST", "PUT", "PATCH"];
/// Body encodings.
pub const BODY_TYPES: [&str; 3] = ["json", "form-data", "text"];
/// MCP transports.
pub const MCP_TRANSPORTS: [&str; 2] = ["streamable-http", "sse"];

/// The largest declaration a facilitator catalogs (compact JSON bytes).
pub const MAX_DECLARATION_BYTES: usize = 32 * 1024;
/// The longest resource URL cataloged.
pub const MAX_URL_LEN: usize = 2048;
/// The longest description or MIME type cataloged.
pub const MAX_TEXT_LEN: usize = 1024;

/// What a body input is encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// `json`.
    Json,
    /// `form-data`.
    FormData,
    /// `text`.
    Text,
}

impl BodyType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::FormData => "form-data",
            Self::Text => "text",
        }
    }
}

#[derive(Debug, Clone)]
enum Input {
    Query,
    Body(BodyType),
    Mcp {
        tool: String,
        description: Option<String>,
        transport: Option<String>,
    },
}

/// A typed bazaar declaration for one route.
///
/// ```
/// use x402_core::extension::bazaar::Bazaar;
/// let d = Bazaar::query()
///     .method("GET")
///     .input_example(serde_json::json!({"city": "Paris"}))
///     .input_schema(serde_json::json!({"properties": {"city": {"type": "string"}}}))
///     .output_example(serde_json::json!({"temperature": 21}))
///     .route_template("/weather/:city");
/// assert!(x402_core::extension::bazaar::check(&d.declaration()).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct Bazaar {
    input: Input,
    method: Option<String>,
    input_example: Option<Raw>,
    input_schema: Option<Raw>,
    path_params_schema: Option<Raw>,
    output_example: Option<Raw>,
    output_schema: Option<Raw>,
    route_template: Option<String>,
}

/// `{"type": "string", key: value}`, in that order.
fn string_with<T: Serialize + ?Sized>(key: &str, value: &T) -> JsonObject {
    JsonObject::new().with("type", "string").with(key, value)
}

fn raw_of<T: Serialize>(value: &T) -> Raw {
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

/// `{first: value, ...spread}`: `spread`'s members after `first`, replacing it when it names it.
fn spread(first: &str, value: &str, rest: Option<&RawValue>) -> JsonObject {
    let mut object = JsonObject::new().with(first, value);
    if let Some(rest) = rest.and_then(|r| JsonObject::parse(r.get()).ok()) {
        object.extend(&rest);
    }
    object
}

impl Bazaar {
    fn new(input: Input) -> Self {
        Self {
            input,
            method: None,
            input_example: None,
            input_schema: None,
            path_params_schema: None,
            output_example: None,
            output_schema: None,
            route_template: None,
        }
    }

    /// An HTTP resource taking its input in the query string (`GET`, `HEAD`, `DELETE`).
    pub fn query() -> Self {
        Self::new(Input::Query)
    }

    /// An HTTP resource taking a body (`POST`, `PUT`, `PATCH`) encoded as `body_type`.
    pub fn body(body_type: BodyType) -> Self {
        Self::new(Input::Body(body_type))
    }

    /// An MCP tool; `input_schema` is the tool's JSON Schema.
    pub fn mcp(tool: impl Into<String>, input_schema: impl Serialize) -> Self {
        let mut b = Self::new(Input::Mcp {
            tool: tool.into(),
            description: None,
            transport: None,
        });
        b.input_schema = Some(raw_of(&input_schema));
        b
    }

    /// The HTTP method (without it, the seller fills in the request's method).
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// An example input: the query parameters, the body, or the MCP call's arguments.
    pub fn input_example(mut self, example: impl Serialize) -> Self {
        self.input_example = Some(raw_of(&example));
        self
    }

    /// The JSON Schema of the input (query parameters or body); for MCP, replaces the tool's.
    pub fn input_schema(mut self, schema: impl Serialize) -> Self {
        self.input_schema = Some(raw_of(&schema));
        self
    }

    /// The JSON Schema of the path parameters of the route template.
    pub fn path_params_schema(mut self, schema: impl Serialize) -> Self {
        self.path_params_schema = Some(raw_of(&schema));
        self
    }

    /// An example output (declared as `{"type": "json", "example": …}`).
    pub fn output_example(mut self, example: impl Serialize) -> Self {
        self.output_example = Some(raw_of(&example));
        self
    }

    /// The JSON Schema of the output example (used with [`Bazaar::output_example`]).
    pub fn output_schema(mut self, schema: impl Serialize) -> Self {
        self.output_schema = Some(raw_of(&schema));
        self
    }

    /// The route template (`/users/:id`): catalogues list the resource under it, not under each
    /// concrete path. Must start with `/`, use only `A-Za-z0-9_/:.-~%`, and after decoding hold
    /// no `..` and no `://`.
    pub fn route_template(mut self, template: impl Into<String>) -> Self {
        self.route_template = Some(template.into());
        self
    }

    /// An MCP tool's description.
    pub fn tool_description(mut self, description: impl Into<String>) -> Self {
        if let Input::Mcp { description: d, .. } = &mut self.input {
            *d = Some(description.into());
        }
        self
    }

    /// An MCP tool's transport (`streamable-http`, `sse`).
    pub fn transport(mut self, transport: impl Into<String>) -> Self {
        if let Input::Mcp { transport: t, .. } = &mut self.input {
            *t = Some(transport.into());
        }
        self
    }

    /// The declaration's HTTP method, when declared.
    pub fn declared_method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Whether the input is an MCP tool.
    pub fn is_mcp(&self) -> bool {
        matches!(self.input, Input::Mcp { .. })
    }

    /// The `{info, schema, routeTemplate?}` declaration, shaped as the reference writes it.
    pub fn declaration(&self) -> Declaration {
        let empty = || raw_of(&serde_json::json!({}));
        let mut info_input = JsonObject::new();
        let mut schema_input = JsonObject::new();
        let default_schema = raw_of(&serde_json::json!({"properties": {}}));
        let required: &[&str];
        match &self.input {
            Input::Query | Input::Body(_) => {
                info_input.set_value("type", "http");
                if let Some(m) = &self.method {
                    info_input.set_value("method", m);
                }
                schema_input.set_value("type", &string_with("const", "http"));
                let methods: &[&str] = if matches!(self.input, Input::Query) {
                    &QUERY_METHODS
                } else {
                    &BODY_METHODS
                };
                schema_input.set_value("method", &string_with("enum", methods));
                let input_schema = self.input_schema.clone().unwrap_or(default_schema);
                if let Input::Body(body_type) = &self.input {
                    info_input.set_value("bodyType", body_type.as_str());
                    info_input.set("body", self.input_example.clone().unwrap_or_else(empty));
                    schema_input.set_value("bodyType", &string_with("enum", &BODY_TYPES));
                    schema_input.set("body", input_schema);
                    required = &["type", "method", "bodyType", "body"];
                } else {
                    info_input.set(
                        "queryParams",
                        self.input_example.clone().unwrap_or_else(empty),
                    );
                    schema_input.set_value(
                        "queryParams",
                        &spread("type", "object", Some(&input_schema)),
                    );
                    required = &["type", "method"];
                }
                if let Some(p) = &self.path_params_schema {
                    schema_input.set_value("pathParams", &spread("type", "object", Some(p)));
                }
            }
            Input::Mcp {
                tool,
                description,
                transport,
            } => {
                info_input.set_value("type", "mcp");
                info_input.set_value("toolName", tool);
                schema_input.set_value("type", &string_with("const", "mcp"));
                schema_input.set_value("toolName", &serde_json::json!({"type": "string"}));
                if let Some(d) = description {
                    info_input.set_value("description", d);
                    schema_input.set_value("description", &serde_json::json!({"type": "string"}));
                }
                if let Some(t) = transport {
                    info_input.set_value("transport", t);
                    let mut s = JsonObject::new().with("type", "string");
                    if MCP_TRANSPORTS.contains(&t.as_str()) {
                        s.set_value("enum", &[t]);
                    }
                    schema_input.set_value("transport", &s);
                }
                info_input.set(
                    "inputSchema",
                    self.input_schema.clone().unwrap_or_else(empty),
                );
                schema_input.set_value("inputSchema", &serde_json::json!({"type": "object"}));
                if let Some(e) = &self.input_example {
                    info_input.set("example", e.clone());
                    schema_input.set_value("example", &serde_json::json!({"type": "object"}));
                }
                required = &["type", "toolName", "inputSchema"];
            }
        }
        let mut info = JsonObject::new().with("input", &info_input);
        let mut properties = JsonObject::new().with(
            "input",
            &JsonObject::new()
                .with("type", "object")
                .with("properties", &schema_input)
                .with("required", required)
                .with("additionalProperties", &false),
        );
        if let Some(example) = &self.output_example {
            info.set_value(
                "output",
                &JsonObject::new()
                    .with("type", "json")
                    .with("example", example),
            );
            let example_schema = spread("type", "object", self.output_schema.as_deref());
            properties.set_value(
                "output",
                &JsonObject::new()
                    .with("type", "object")
                    .with(
                        "properties",
                        &JsonObject::new()
                            .with("type", &serde_json::json!({"type": "string"}))
                            .with("example", &example_schema),
                    )
                    .with("required", &["type"]),
            );
        }
        let schema = JsonObject::new()
            .with("$schema", SCHEMA_DIALECT)
            .with("type", "object")
            .with("properties", &properties)
            .with("required", &["input"]);
        let mut siblings = JsonObject::new();
        if let Some(t) = &self.route_template {
            siblings.set_value("routeTemplate", t);
        }
        Declaration {
            info,
            schema,
            siblings,
        }
    }

    /// Start-up validation: the route template, the method against the input type, and the
    /// declaration against its own schema (with the method filled in when none is declared: the
    /// request supplies it).
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut declaration = self.declaration();
        if self.method.is_none() && !self.is_mcp() {
            let method = if matches!(self.input, Input::Query) {
                "GET"
            } else {
                "POST"
            };
            let mut input = declaration.info.object("input").unwrap_or_default();
            input.set_value("method", method);
            declaration.info.set_value("input", &input);
        }
        check(&declaration)
    }
}

/// Whether `template` is a route template the specification accepts: starts with `/`, matches
/// `^/[a-zA-Z0-9_/:.\-~%]+$`, and once percent-decoded (repeatedly, at most 5 passes) holds no
/// `..` and no `://`.
pub fn is_valid_route_template(template: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_/:.-~%".contains(c);
    if template.len() < 2 || !template.starts_with('/') || !template.chars().all(allowed) {
        return false;
    }
    let mut decoded = template.to_owned();
    for _ in 0..5 {
        let Some(next) = percent_decode(&decoded) else {
            return false;
        };
        if next == decoded {
            return !decoded.contains("..") && !decoded.contains("://");
        }
        decoded = next;
    }
    false
}

/// One pass of `decodeURIComponent`: `None` on a malformed escape or invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Checks a declaration: the shape rules of the specification (input type, method, body type,
/// MCP tool and transport), the route template when present, and `info` against `schema`.
pub fn check(declaration: &Declaration) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let Some(input) = declaration.info.object("input") else {
        return Err(vec!["missing or invalid 'info.input' field".to_owned()]);
    };
    let text = |key: &str| {
        input
            .get(key)
            .map(|r| serde_json::from_str::<Value>(r.get()).unwrap_or_default())
    };
    let method = text("method");
    match input.string("type").as_deref() {
        Some("http") => {
            let method = method
                .as_ref()
                .map(|m| m.as_str().unwrap_or_default().to_owned());
            if let Some(m) = &method
                && !QUERY_METHODS.contains(&m.as_str())
                && !BODY_METHODS.contains(&m.as_str())
            {
                errors.push(format!("info.input.method must be one of GET, HEAD, DELETE, POST, PUT, PATCH, got {m:?}"));
            }
            if let Some(body_type) = text("bodyType") {
                let b = body_type.as_str().unwrap_or_default();
                if !BODY_TYPES.contains(&b) {
                    errors.push(format!(
                        "info.input.bodyType must be one of json, form-data, text, got {body_type}"
                    ));
                }
                if let Some(m) = &method
                    && !BODY_METHODS.contains(&m.as_str())
                {
                    errors.push(format!("info.input.bodyType is set but method {m:?} is not a body method (POST, PUT, PATCH)"));
                }
            } else if let Some(m) = &method
                && BODY_METHODS.contains(&m.as_str())
            {
                errors.push(format!(
                    "method {m:?} takes a body but info.input declares no bodyType"
                ));
            }
        }
        Some("mcp") => {
            if input.string("toolName").is_none_or(|t| t.is_empty()) {
                errors.push("info.input.toolName is required and must be a non-empty string for MCP extensions".to_owned());
            }
            if !text("inputSchema").is_some_and(|s| s.is_object()) {
                errors.push(
                    "info.input.inputSchema is required and must be an object for MCP extensions"
                        .to_owned(),
                );
            }
            if let Some(t) = text("transport")
                && !t.as_str().is_some_and(|t| MCP_TRANSPORTS.contains(&t))
            {
                errors.push(format!(
                    "info.input.transport must be one of streamable-http, sse, got {t}"
                ));
            }
        }
        other => {
            errors.push(format!(
                "info.input.type must be \"http\" or \"mcp\", got {other:?}"
            ));
            return Err(errors);
        }
    }
    if let Some(raw) = declaration.siblings.get("routeTemplate") {
        match serde_json::from_str::<String>(raw.get()) {
            Ok(t) if is_valid_route_template(&t) => {}
            _ => errors.push(format!(
                "routeTemplate {} is not a valid route template",
                raw.get()
            )),
        }
    }
    if let Err(e) = schema::validate(&declaration.schema.to_value(), &declaration.info.to_value()) {
        errors.extend(e);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Whether `method` fits the declaration's input: query methods for query inputs, body methods
/// for body inputs (an MCP input takes any).
pub fn method_fits(declaration: &Declaration, method: &str) -> bool {
    let Some(input) = declaration.info.object("input") else {
        return false;
    };
    match input.string("type").as_deref() {
        Some("mcp") => true,
        Some("http") if input.contains("bodyType") => BODY_METHODS.contains(&method),
        Some("http") => QUERY_METHODS.contains(&method),
        _ => false,
    }
}

/// The path parameters of `path` under `template` (`/users/:id` and `/users/42` → `{id: "42"}`),
/// or `None` when the path does not follow the template.
pub fn path_params(template: &str, path: &str) -> Option<JsonObject> {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut params = JsonObject::new();
    for (t, p) in t.iter().zip(&p) {
        match t.strip_prefix(':') {
            Some(name) if !p.is_empty() => params.set_value(name, p),
            Some(_) => return None,
            None if t == p => {}
            None => return None,
        }
    }
    Some(params)
}

/// A declaration enriched for one request, as the reference's server extension does: the
/// request's `method` fills `info.input.method` and narrows the schema's method to it; a route
/// `template` with parameters (`/users/:id`) becomes `routeTemplate` and the parameters read
/// from `path` become `info.input.pathParams`. MCP declarations are left as they are.
pub fn enrich(
    declaration: &Declaration,
    method: &str,
    template: Option<&str>,
    path: &str,
) -> Declaration {
    let mut out = declaration.clone();
    let Some(mut input) = out.info.object("input") else {
        return out;
    };
    if input.string("type").as_deref() == Some("mcp") {
        return out;
    }
    input.set_value("method", method);
    let mut properties = out.schema.object("properties").unwrap_or_default();
    let mut schema_input = properties.object("input").unwrap_or_default();
    let mut input_props = schema_input.object("properties").unwrap_or_default();
    input_props.set_value("method", &string_with("enum", &[method]));
    let mut required: Vec<String> = schema_input
        .get("required")
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or_default();
    if !required.iter().any(|r| r == "method") {
        required.push("method".to_owned());
    }
    let params = template
        .filter(|t| t.contains(':') && is_valid_route_template(t))
        .and_then(|t| path_params(t, path).map(|p| (t, p)));
    if let Some((template, params)) = &params {
        out.siblings.set_value("routeTemplate", template);
        input.set_value("pathParams", params);
        if !input_props.contains("pathParams") {
            input_props.set_value("pathParams", &serde_json::json!({"type": "object"}));
        }
    }
    schema_input.set_value("properties", &input_props);
    schema_input.set_value("required", &required);
    properties.set_value("input", &schema_input);
    out.schema.set_value("properties", &properties);
    out.info.set_value("input", &input);
    out
}

/// The origin (`scheme://host[:port]`) and path of an absolute `http(s)` URL without user
/// information, or why it is not one.
pub fn split_url(url: &str) -> Result<(String, String), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!(
            "the resource URL is longer than {MAX_URL_LEN} characters"
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the resource URL holds control characters or spaces".to_owned());
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "the resource URL is not absolute".to_owned())?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err("the resource URL is not http(s)".to_owned());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_ok = |c: char| c.is_ascii_alphanumeric() || "-.:[]".contains(c);
    if authority.is_empty() || !authority.chars().all(host_ok) || authority.starts_with(':') {
        return Err("the resource URL has no valid host (or holds user information)".to_owned());
    }
    let path = tail.split(['?', '#']).next().unwrap_or_default();
    let path = if path.is_empty() { "/" } else { path };
    Ok((
        format!("{scheme}://{}", authority.to_ascii_lowercase()),
        path.to_owned(),
    ))
}

/// Whether an origin's host is a public name: not a loopback name, an IP literal or a number.
fn public_host(origin: &str) -> bool {
    let host = origin.split_once("://").map_or(origin, |(_, h)| h);
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    !(host.starts_with('[')
        || [
            "localhost",
            "localhost.localdomain",
            "ip6-localhost",
            "ip6-loopback",
        ]
        .contains(&host)
        || host.chars().all(|c| c.is_ascii_digit() || c == '.')
        || host.starts_with("0x"))
}

fn printable(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Why a bazaar declaration was not cataloged (the `rejectedReason` of the facilitator's answer).
pub type Rejected = String;

/// The catalogue entry for a settled v2 payment carrying a bazaar declaration: `Ok(None)` when
/// the payment declares none, `Err` with the reason when it declares one that is not cataloged
/// (malformed, too large, failing [`check`], no usable resource URL).
///
/// The entry is keyed by the resource's canonical URL: its origin and route template when one is
/// declared, its origin and path otherwise. `accepts` is the settled requirements (the seller's,
/// which the facilitator verified), the description and MIME type come from the payload's
/// `resource` (bounded), and only the bazaar declaration is echoed — not the payload's other
/// extensions, which may carry the buyer's data.
pub fn catalog_entry(
    payload: &PaymentPayloadV2,
    requirements: &PaymentRequirementsV2,
    now: UnixTime,
    ttl: Duration,
) -> Result<Option<CatalogEntry>, Rejected> {
    let extensions = read_extensions(payload.extensions.as_deref())?;
    let Some(raw) = extensions.get(BAZAAR) else {
        return Ok(None);
    };
    if raw.get().len() > MAX_DECLARATION_BYTES {
        return Err(format!(
            "the declaration is larger than {MAX_DECLARATION_BYTES} bytes"
        ));
    }
    let declaration: Declaration =
        serde_json::from_str(raw.get()).map_err(|e| format!("malformed declaration: {e}"))?;
    check(&declaration).map_err(|errors| {
        let mut text = errors.join("; ");
        text.truncate(512);
        text
    })?;
    let resource = payload
        .resource
        .as_ref()
        .ok_or_else(|| "the payment names no resource".to_owned())?;
    let (origin, path) = split_url(&resource.url)?;
    let template = declaration.siblings.string("routeTemplate");
    let canonical = format!("{origin}{}", template.as_deref().unwrap_or(&path));
    let input = declaration.info.object("input").unwrap_or_default();
    let kind = input.string("type").unwrap_or_default();
    let bounded = |t: &Option<String>| {
        t.as_ref()
            .filter(|t| t.chars().count() <= MAX_TEXT_LEN && !t.chars().any(char::is_control))
            .cloned()
    };
    let tags = resource.tags.as_ref().map(|tags| {
        let mut seen = std::collections::HashSet::new();
        tags.iter()
            .filter(|t| printable(t, 32) && seen.insert(t.to_ascii_lowercase()))
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
    });
    let icon = resource
        .icon_url
        .as_ref()
        .filter(|u| split_url(u).is_ok_and(|(origin, _)| public_host(&origin)))
        .cloned();
    let mut echoed = JsonObject::new();
    echoed.set(BAZAAR, declaration.to_raw());
    let item = DiscoveryItem {
        resource: canonical.clone(),
        kind: kind.clone(),
        x402_version: X402Version::V2,
        accepts_raw: vec![raw_of(requirements)],
        last_updated: LastUpdated::Iso(iso8601(now)),
        description: bounded(&resource.description),
        mime_type: bounded(&resource.mime_type),
        service_name: resource.service_name.clone().filter(|s| printable(s, 32)),
        tags: tags.filter(|t| !t.is_empty()),
        icon_url: icon,
        extensions: Some(echoed.to_raw()),
        metadata: None,
    };
    Ok(Some(CatalogEntry {
        resource: canonical,
        kind,
        pay_to: normalize_pay_to(&requirements.pay_to),
        network: requirements.network.clone(),
        scheme: requirements.scheme.clone(),
        item: serde_json::to_string(&item).map_err(|e| e.to_string())?,
        updated_at: now,
        expires_at: UnixTime(now.0.saturating_add(ttl.as_secs())),
    }))
}
