//! Model cards: a version's markdown (intended use, limitations, evaluation,
//! ethical considerations), rendered safely, and its optional signature.
//! Members edit them; every edit is audited with digests of before and after.

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::registry::types::{CARD_MAX_CHARS, CardUpdate, ModelCard, Signature};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Where a link in a card may point: the web, mail, or within Capstan.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    let ok = lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("mailto:")
        || lower.starts_with('#')
        || (lower.starts_with('/') && !lower.starts_with("//"));
    if ok { url } else { CowStr::Borrowed("#") }
}

/// Markdown as HTML that cannot run or fetch anything: raw HTML is shown as
/// text, images are replaced by their alt text (no remote image is ever
/// loaded), and links go only to http(s), mail or Capstan's own pages.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Some(Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id }))
        }
        other => Some(other),
    });
    let mut html = String::with_capacity(markdown.len() * 5 / 4);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn check_signature(signature: &Signature) -> Result<(), String> {
    if signature.inputs.len() > 250 || signature.outputs.len() > 250 {
        return Err("A signature has at most 250 inputs and 250 outputs.".into());
    }
    for field in signature.inputs.iter().chain(&signature.outputs) {
        let name_ok = (1..=250).contains(&field.name.chars().count()) && !field.name.chars().any(char::is_control);
        let kind_ok = (1..=64).contains(&field.kind.len())
            && field.kind.chars().all(|c| c.is_ascii_alphanumeric() || "_-[](), ".contains(c));
        if !name_ok {
            return Err(format!("Column {:?} needs a name of 1 to 250 characters.", field.name));
        }
        if !kind_ok {
            return Err(format!(
                "Column {:?} has type {:?}: use a type like double, long or string.",
                field.name, field.kind
            ));
        }
    }
    Ok(())
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A version's card, if the caller may read its team.
pub async fn get(ctx: &Ctx, id: Uuid) -> Result<ModelCard, AppError> {
    crate::registry::versions::load(ctx, id, Action::ReadTeam).await?;
    let row = sqlx::query!(
        "select v.card, v.signature, u.email as \"updated_by?\", v.card_updated_at
         from model_version v left join app_user u on u.user_id = v.card_updated_by where v.version_id = $1",
        id
    )
    .fetch_one(ctx.pool())
    .await?;
    Ok(ModelCard {
        html: render(&row.card),
        markdown: row.card,
        signature: row.signature.and_then(|s| serde_json::from_value(s).ok()),
        updated_by: row.updated_by,
        updated_at: row.card_updated_at,
    })
}

/// Replaces a version's card and signature (members and up).
pub async fn set(ctx: &Ctx, id: Uuid, input: CardUpdate) -> Result<ModelCard, AppError> {
    let (version, team_id) = crate::registry::versions::load(ctx, id, Action::Contribute).await?;
    let actor = ctx.actor()?;
    let chars = input.markdown.chars().count();
    if chars > CARD_MAX_CHARS {
        return Err(AppError::field(
            "markdown",
            format!("A card holds at most 256 Ki characters; this one has {} Ki.", chars.div_ceil(1024)),
        ));
    }
    if input.markdown.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(AppError::field("markdown", "Remove the control characters."));
    }
    if let Some(signature) = &input.signature {
        check_signature(signature).map_err(|m| AppError::field("signature", m))?;
    }
    let mut tx = ctx.pool().begin().await?;
    let before = sqlx::query!("select card, signature from model_version where version_id = $1 for update", id)
        .fetch_one(&mut *tx)
        .await?;
    let signature = input.signature.as_ref().map(|s| json!(s));
    sqlx::query!(
        "update model_version set card = $2, signature = $3, card_updated_by = $4, card_updated_at = now(),
                updated_at = now()
         where version_id = $1",
        id,
        input.markdown,
        signature,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "model_version.card_updated",
            target_type: "model_version",
            target_id: Some(id.to_string()),
            summary: json!({
                "model": version.model, "number": version.number,
                "before": { "sha256": digest(&before.card), "chars": before.card.chars().count(), "signature": before.signature },
                "after": { "sha256": digest(&input.markdown), "chars": input.markdown.chars().count(), "signature": signature },
            }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn cards_render_without_scripts_raw_html_or_remote_images() {
        let html = render(
            "## Intended use\n\nChurn <script>alert(1)</script> risk.\n\n<img src=x onerror=alert(1)>\n\n\
             ![chart](https://tracker.example.com/pixel.png)\n\n[docs](https://example.com) [bad](javascript:alert(1))\n\n\
             | metric | value |\n| --- | --- |\n| auc | 0.91 |\n",
        );
        assert!(html.contains("<h2>Intended use</h2>"), "{html}");
        assert!(!html.contains("<script") && html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("chart") && !html.contains("tracker.example.com"), "{html}");
        assert!(html.contains(r#"<a href="https://example.com">docs</a>"#), "{html}");
        assert!(!html.contains("javascript:") && html.contains(r##"<a href="#">bad</a>"##), "{html}");
        assert!(html.contains("<table>") && html.contains("<td>0.91</td>"), "{html}");
    }
}
