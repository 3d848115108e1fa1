//! The push half of a round: kontor's changes since the push cursor, sent to Salesforce by
//! collections of 200, and Salesforce's answers recorded with the cursor (see the module above).

use super::*;

impl Engine<'_> {
    pub(super) async fn push(
        &mut self,
        api: &mut Api<'_>,
        mappings: &[SalesforceMapping],
    ) -> Result<(), Stop> {
        let users: HashMap<i64, String> =
            self.owners.iter().map(|(u, o)| (*o, u.clone())).collect();
        // A kontor stage goes out as the first Salesforce stage (in picklist order) mapped
        // to it.
        let settings = &self.conn.settings;
        let order: Vec<String> = settings
            .fields
            .get("Opportunity")
            .and_then(|f| f.get("StageName"))
            .map(|f| f.values.clone())
            .unwrap_or_else(|| settings.stages.keys().cloned().collect());
        let mut stages: HashMap<String, String> = HashMap::new();
        for sf in order.iter().rev() {
            if let Some(k) = settings.stages.get(sf) {
                stages.insert(k.clone(), sf.clone());
            }
        }
        let inclusion = self.inclusion().await?;
        let mut seq = self
            .store
            .salesforce_connection(self.account)
            .await?
            .map_or(self.conn.push_seq, |c| c.push_seq);
        loop {
            let (candidates, upto) = self
                .store
                .salesforce_push_candidates(self.account, seq, PUSH_BATCH)
                .await?;
            if candidates.is_empty() && upto == seq {
                return Ok(());
            }
            let now = now_ms();
            let mut outcomes: Vec<PushOutcome> = Vec::new();
            // (sf_type, upsert field) → records, each with its outcome's index.
            let mut batches: BTreeMap<(String, Option<String>), Vec<(usize, Value)>> =
                BTreeMap::new();
            for c in candidates {
                if c.record.archived {
                    continue;
                }
                if c.object_type == "0-1" {
                    if let Some((groups, kinds)) = &inclusion {
                        if !crate::salesforce::included(groups, kinds, &c.record.props) {
                            continue;
                        }
                    }
                }
                let sf_type = match (&c.link, c.object_type.as_str()) {
                    (Some(l), _) => l.sf_type.clone(),
                    (None, "0-1") => self.conn.settings.contacts_as.clone(),
                    (None, "0-2") => "Account".into(),
                    (None, "0-27") => "Task".into(),
                    (None, _) => "Opportunity".into(),
                };
                let described = self.conn.settings.fields.get(&sf_type);
                let mut body = Map::new();
                let mut synced = Map::new();
                for m in mappings.iter().filter(|m| m.sf_type == sf_type) {
                    if m.rule == RULE_NONE || m.rule == kontor_store::RULE_ALWAYS_SF {
                        continue;
                    }
                    let value = c.record.props.get(&m.property).cloned();
                    let last = c
                        .link
                        .as_ref()
                        .and_then(|l| l.synced.get(&m.property))
                        .and_then(|v| v.as_str())
                        .map(str::to_string);
                    if c.link.is_some()
                        && value.as_deref().unwrap_or("") == last.as_deref().unwrap_or("")
                    {
                        continue;
                    }
                    if m.rule == RULE_PREFER_SF && last.as_deref().is_some_and(|s| !s.is_empty()) {
                        continue;
                    }
                    let info = described.and_then(|d| d.get(&m.sf_field));
                    let writable = info.is_none_or(|f| {
                        if c.link.is_some() {
                            f.updateable
                        } else {
                            f.createable
                        }
                    });
                    if !writable {
                        continue;
                    }
                    let kind = info.map_or("string", |f| f.kind.as_str());
                    let json = match m.sf_field.as_str() {
                        "OwnerId" => match value
                            .as_deref()
                            .and_then(|o| o.parse::<i64>().ok())
                            .and_then(|o| users.get(&o))
                        {
                            Some(u) => json!(u),
                            None => continue,
                        },
                        "StageName" => match value.as_deref().and_then(|s| stages.get(s)) {
                            Some(s) => json!(s),
                            None => continue,
                        },
                        "Status" | "Priority" if sf_type == "Task" => {
                            match crate::salesforce::task_value(&m.sf_field, None, value.as_deref())
                            {
                                Some(v) => json!(v),
                                None => continue,
                            }
                        }
                        _ => to_salesforce(kind, value.as_deref()),
                    };
                    body.insert(m.sf_field.clone(), json);
                    synced.insert(
                        m.property.clone(),
                        value.map(Value::String).unwrap_or(Value::Null),
                    );
                }
                let i = outcomes.len();
                let mut outcome = PushOutcome {
                    object_type: c.object_type.clone(),
                    record_id: c.record.id,
                    sf_type: sf_type.clone(),
                    sf_id: c.link.as_ref().map(|l| l.sf_id.clone()),
                    synced,
                    system: BTreeMap::new(),
                    error: None,
                    unlink: false,
                };
                match &c.link {
                    Some(l) => {
                        if !body.is_empty() {
                            body.insert("attributes".into(), json!({"type": sf_type}));
                            body.insert("id".into(), json!(l.sf_id));
                            batches
                                .entry((sf_type.clone(), None))
                                .or_default()
                                .push((i, Value::Object(body)));
                        }
                    }
                    None => match self.conn.settings.external_ids.get(&sf_type) {
                        Some(ext) => {
                            // A new record needs no blanks; a lead needs a company, as
                            // HubSpot's integration sends one.
                            body.retain(|_, v| !v.is_null());
                            if sf_type == "Lead" && !body.contains_key("Company") {
                                body.insert("Company".into(), json!("[not provided]"));
                            }
                            body.insert("attributes".into(), json!({"type": sf_type}));
                            body.insert(ext.clone(), json!(c.record.id.to_string()));
                            batches
                                .entry((sf_type.clone(), Some(ext.clone())))
                                .or_default()
                                .push((i, Value::Object(body)));
                        }
                        None => {
                            outcome.error = Some(report(
                                &outcome,
                                "Other",
                                "NO_EXTERNAL_ID_FIELD",
                                &format!("{sf_type} has no external-ID field named Kontor…, so kontor cannot create records there safely. Add a text field such as Kontor_Id__c, marked External ID and Unique, then retry."),
                                None,
                            ));
                        }
                    },
                }
                outcomes.push(outcome);
            }
            for ((sf_type, ext), records) in batches {
                for chunk in records.chunks(COLLECTION) {
                    let body: Vec<Value> = chunk.iter().map(|(_, v)| v.clone()).collect();
                    let answer = api
                        .collection(ext.as_deref().map(|e| (sf_type.as_str(), e)), body)
                        .await;
                    match answer {
                        Ok(results) => {
                            for ((i, _), r) in chunk.iter().zip(results) {
                                self.settle(&mut outcomes[*i], &r, now);
                            }
                        }
                        Err(SfError::Refused { code, message, .. }) => {
                            for (i, _) in chunk {
                                let o = &mut outcomes[*i];
                                o.error = Some(report(o, "Other", &code, &message, None));
                            }
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            let moved = self
                .store
                .ack_salesforce_push(self.account, self.org(), seq, upto, &outcomes)
                .await?;
            if !moved {
                return Err(Stop::Released);
            }
            self.renew().await?;
            if upto == seq {
                return Ok(());
            }
            seq = upto;
        }
    }

    /// The inclusion list's filter groups, with the kinds of the properties they name.
    async fn inclusion(&self) -> Result<Option<crate::salesforce::Inclusion>, Stop> {
        let Some(filter) = &self.conn.settings.inclusion else {
            return Ok(None);
        };
        let defs = self.store.properties(self.account, "0-1", false).await?;
        Ok(crate::salesforce::inclusion(filter, &defs).ok())
    }

    /// One record's answer in a collection.
    fn settle(&self, o: &mut PushOutcome, r: &Value, now: i64) {
        if r["success"].as_bool() == Some(true) {
            if let Some(id) = r["id"].as_str() {
                o.sf_id = Some(id.to_string());
                if let Some(p) = id_property(&o.sf_type) {
                    o.system.insert(p.into(), Some(id.to_string()));
                    o.system
                        .insert("salesforcelastsynctime".into(), Some(iso(now)));
                }
            }
            return;
        }
        let e = r["errors"].get(0).cloned().unwrap_or(Value::Null);
        let code = e["statusCode"].as_str().unwrap_or("UNKNOWN").to_string();
        let message = e["message"].as_str().unwrap_or("").to_string();
        let fields = e["fields"].to_string();
        let (category, retry) = match code.as_str() {
            "DUPLICATE_VALUE" | "DUPLICATES_DETECTED" => ("Duplicates", None),
            c if c.starts_with("INSUFFICIENT_ACCESS") => ("Permissions", None),
            "INACTIVE_OWNER_OR_USER" => ("Owner", None),
            "INVALID_CROSS_REFERENCE_KEY" if fields.contains("OwnerId") => ("Owner", None),
            // Transient: the engine tries again by itself.
            "UNABLE_TO_LOCK_ROW" => ("Other", Some(now + 60_000)),
            "ENTITY_IS_DELETED" => {
                o.unlink = true;
                ("Other", None)
            }
            _ => ("Property value", None),
        };
        o.system.clear();
        o.error = Some(report(o, category, &code, &message, retry));
    }
}

fn report(
    o: &PushOutcome,
    category: &str,
    code: &str,
    message: &str,
    retry_at: Option<i64>,
) -> SalesforceErrorReport {
    SalesforceErrorReport {
        direction: "push",
        object_type: o.object_type.clone(),
        record_id: Some(o.record_id),
        sf_type: o.sf_type.clone(),
        sf_id: o.sf_id.clone(),
        category: category.into(),
        code: code.into(),
        message: message.into(),
        retry_at,
    }
}
