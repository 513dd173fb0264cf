//! Options of a Responses API request -> Chat Completions: `tools` (function tools only;
//! built-in tools refused), `tool_choice` (incl. `allowed_tools`), `text.format` and
//! `reasoning.effort`.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::empty_schema;
use super::responses_parts::{Obj, invalid, take_string};
use crate::LlmError;
use crate::wire::openai as oa;

pub(crate) type Tools = (Option<Vec<oa::Tool>>, Option<oa::ToolChoice>);

/// `tools` (function tools only) and `tool_choice`.
pub(crate) fn tools(tools: Option<Value>, choice: Option<Value>) -> Result<Tools, LlmError> {
    let list = match tools {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("tools must be an array")),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.into_iter().enumerate() {
        out.push(function_tool(t, i)?);
    }
    let choice = tool_choice(choice, &mut out)?;
    if out.is_empty() {
        return Ok((None, None));
    }
    Ok((Some(out), choice))
}

fn function_tool(t: Value, i: usize) -> Result<oa::Tool, LlmError> {
    let Value::Object(mut t) = t else {
        return Err(invalid(format!("tools[{i}] must be an object")));
    };
    match take_string(&mut t, "type").as_deref() {
        Some("function") => {}
        Some("custom") => {
            return Err(LlmError::Unsupported(format!(
                "tools[{i}]: `custom` tools (free-form text input) exist only in OpenAI's \
                 Responses API; this model's upstream takes function tools only"
            )));
        }
        Some(kind) => return Err(builtin(&format!("tools[{i}]"), kind)),
        None => return Err(invalid(format!("tools[{i}]: tool without a `type`"))),
    }
    let Some(name) = take_string(&mut t, "name") else {
        return Err(invalid(format!(
            "tools[{i}]: function tool without a `name`"
        )));
    };
    let parameters = match t.remove("parameters") {
        None | Some(Value::Null) => empty_schema(),
        Some(schema) => schema,
    };
    Ok(oa::Tool {
        kind: oa::function_type(),
        function: Some(oa::FunctionDef {
            name,
            description: take_string(&mut t, "description"),
            parameters: Some(parameters),
            strict: t.get("strict").and_then(Value::as_bool),
        }),
    })
}

fn builtin(path: &str, kind: &str) -> LlmError {
    LlmError::InvalidRequest(format!(
        "{path}: `{kind}` is a built-in tool of OpenAI's Responses API; this model's upstream \
         cannot run it"
    ))
}

/// `tool_choice`: modes and a named function map directly; `allowed_tools` restricts
/// `tools` to the functions it names (mode auto / required).
fn tool_choice(
    choice: Option<Value>,
    tools: &mut Vec<oa::Tool>,
) -> Result<Option<oa::ToolChoice>, LlmError> {
    let mode = |m: &str| Some(oa::ToolChoice::Mode(m.to_owned()));
    let mut c = match choice {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(m)) => {
            return match m.as_str() {
                "auto" | "none" if tools.is_empty() => Ok(None),
                "auto" | "none" => Ok(mode(&m)),
                "required" if tools.is_empty() => Err(invalid(
                    "tool_choice `required` needs at least one function tool in `tools`",
                )),
                "required" => Ok(mode(&m)),
                other => Err(invalid(format!("tool_choice: unknown mode `{other}`"))),
            };
        }
        Some(Value::Object(c)) => c,
        Some(_) => return Err(invalid("tool_choice must be a string or an object")),
    };
    match take_string(&mut c, "type").as_deref() {
        Some("function") => {
            let name = take_string(&mut c, "name").unwrap_or_default();
            if !has_function(tools, &name) {
                return Err(invalid(format!(
                    "tool_choice: function `{name}` is not in `tools`"
                )));
            }
            Ok(Some(oa::ToolChoice::Named(oa::NamedToolChoice {
                kind: oa::function_type(),
                function: oa::NamedFunction { name },
            })))
        }
        Some("allowed_tools") => allowed_tools(c, tools),
        Some(kind) => Err(builtin("tool_choice", kind)),
        None => Err(invalid("tool_choice: object without a `type`")),
    }
}

fn has_function(tools: &[oa::Tool], name: &str) -> bool {
    tools
        .iter()
        .any(|t| t.function.as_ref().is_some_and(|f| f.name == name))
}

fn allowed_tools(
    mut c: Obj,
    tools: &mut Vec<oa::Tool>,
) -> Result<Option<oa::ToolChoice>, LlmError> {
    let mode = take_string(&mut c, "mode").unwrap_or_else(|| "auto".into());
    if mode != "auto" && mode != "required" {
        return Err(invalid(format!(
            "tool_choice.mode: `{mode}` (expected auto or required)"
        )));
    }
    let Some(Value::Array(allowed)) = c.remove("tools") else {
        return Err(invalid("tool_choice.tools must be an array"));
    };
    let mut names = HashSet::with_capacity(allowed.len());
    for (k, t) in allowed.iter().enumerate() {
        let path = format!("tool_choice.tools[{k}]");
        match t.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some(kind) => return Err(builtin(&path, kind)),
            None => return Err(invalid(format!("{path}: tool without a `type`"))),
        }
        let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
        if !has_function(tools, name) {
            return Err(invalid(format!(
                "{path}: function `{name}` is not in `tools`"
            )));
        }
        names.insert(name.to_owned());
    }
    tools.retain(|t| t.function.as_ref().is_some_and(|f| names.contains(&f.name)));
    if tools.is_empty() {
        return Err(invalid("tool_choice.tools names no function tool"));
    }
    Ok(Some(oa::ToolChoice::Mode(mode)))
}

/// `text.format` -> `response_format`.
pub(crate) fn response_format(text: Option<&Value>) -> Result<Option<Value>, LlmError> {
    let Some(format) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let (Some(name), Some(schema)) = (
                format.get("name").and_then(Value::as_str),
                format.get("schema").filter(|s| s.is_object()),
            ) else {
                return Err(invalid(
                    "text.format: json_schema needs a string `name` and an object `schema`",
                ));
            };
            let mut spec = json!({"name": name, "schema": schema});
            for key in ["strict", "description"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    spec[key] = v.clone();
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": spec})))
        }
        _ => Err(invalid(
            "text.format.type must be text, json_object or json_schema",
        )),
    }
}

pub(crate) fn reasoning_effort(reasoning: Option<&Value>) -> Result<Option<String>, LlmError> {
    match reasoning {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(r)) => match r.get("effort") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(e)) => Ok(Some(e.clone())),
            Some(_) => Err(invalid("reasoning.effort must be a string")),
        },
        Some(_) => Err(invalid("reasoning must be an object")),
    }
}
