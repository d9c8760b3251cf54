//! Catalog queries: server models, phone models, phone images.

use crate::validate::{page_param, pagination};
use crate::{Result, Service, ServiceError};
use cph_catalog::{PhoneImage, PhoneModel, ServerModel};

/// Returns the page after `marker` (an item key) of at most `limit` items, and the next marker.
fn marker_page<'a, T>(
    items: Vec<&'a T>,
    key: impl Fn(&T) -> &str,
    marker: Option<&str>,
    limit: usize,
) -> Result<(Vec<&'a T>, Option<String>)> {
    let start = match marker.filter(|m| !m.is_empty()) {
        None => 0,
        Some(m) => items
            .iter()
            .position(|i| key(i) == m)
            .map(|p| p + 1)
            .ok_or_else(|| ServiceError::cps("CPS.0002"))?,
    };
    let page: Vec<&T> = items.into_iter().skip(start).take(limit + 1).collect();
    if page.len() > limit {
        let page: Vec<&T> = page.into_iter().take(limit).collect();
        let next = page.last().map(|i| key(i).to_string());
        Ok((page, next))
    } else {
        Ok((page, None))
    }
}

impl Service {
    /// ListCloudPhoneServerModels, optionally by `product_type` (0 or 1), paged by marker.
    pub async fn list_server_models(
        &self,
        product_type: Option<&str>,
        marker: Option<&str>,
        limit: Option<&str>,
    ) -> Result<(Vec<ServerModel>, Option<String>)> {
        let pt = match product_type {
            None => None,
            Some(s) => match s.trim().parse::<i32>() {
                Ok(v @ (0 | 1)) => Some(v),
                _ => return Err(ServiceError::cps("CPS.0144")),
            },
        };
        let limit = page_param(limit, 100, 1, 100)? as usize;
        let items: Vec<&ServerModel> = self
            .catalog()
            .server_models
            .iter()
            .filter(|m| pt.is_none_or(|p| m.product_type == p))
            .collect();
        let (page, next) = marker_page(items, |m| m.server_model_name.as_str(), marker, limit)?;
        Ok((page.into_iter().cloned().collect(), next))
    }

    /// ListCloudPhoneModels, optionally by `status` (1 on sale, 0 off sale).
    pub async fn list_phone_models(
        &self,
        status: Option<&str>,
        offset: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Vec<PhoneModel>> {
        let st = match status {
            None => None,
            Some(s) => match s.trim().parse::<i32>() {
                Ok(v @ (0 | 1)) => Some(v),
                _ => return Err(ServiceError::cps("CPS.0010")),
            },
        };
        let (offset, limit) = pagination(offset, limit, 100)?;
        Ok(self
            .catalog()
            .phone_models
            .iter()
            .filter(|m| st.is_none_or(|s| m.status == s))
            .skip(offset as usize)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    /// ListCloudPhoneImages: public (`image_type=public`) or private images, paged by marker.
    pub async fn list_phone_images(
        &self,
        image_type: Option<&str>,
        marker: Option<&str>,
        limit: Option<&str>,
    ) -> Result<(Vec<PhoneImage>, Option<String>)> {
        let public = match image_type {
            None => None,
            Some("public") => Some(1),
            Some("private") => Some(0),
            Some(_) => return Err(ServiceError::cps("CPS.0116")),
        };
        let limit = page_param(limit, 100, 1, 100)? as usize;
        let items: Vec<&PhoneImage> = self
            .catalog()
            .phone_images
            .iter()
            .filter(|i| public.is_none_or(|p| i.is_public == p))
            .collect();
        let (page, next) = marker_page(items, |i| i.image_id.as_str(), marker, limit)?;
        Ok((page.into_iter().cloned().collect(), next))
    }
}
