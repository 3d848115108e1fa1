//! Associations, property definitions and custom objects.

use super::*;

pub async fn associations_both_ways(d: Directory) {
    let (a, s) = account(&d, "assoc").await;
    let (contacts, companies, deals) = (
        ot(&s, a, "contacts").await,
        ot(&s, a, "companies").await,
        ot(&s, a, "deals").await,
    );
    let co = s
        .create_records(
            a,
            &companies,
            vec![CreateInput {
                properties: props(json!({"name": "Analytical Engines"})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    let c = s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"email": "ada@ae.example"})),
                associations: vec![AssociationInput {
                    to_id: co,
                    types: vec![("HUBSPOT_DEFINED".into(), 1)],
                }],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    let (found, _) = s
        .associated(a, &contacts, c, &companies, None, 10)
        .await
        .unwrap();
    let mut ids: Vec<i64> = found[0].types.iter().map(|t| t.type_id).collect();
    ids.sort_unstable();
    assert_eq!(
        (found[0].to_id, ids),
        (co, vec![1, 279]),
        "a primary association implies the default one"
    );
    let (back, _) = s
        .associated(a, &companies, co, &contacts, None, 10)
        .await
        .unwrap();
    assert_eq!(back[0].to_id, c);
    assert!(back[0].types.iter().any(|t| t.type_id == 280));
    // An association type that does not belong to the pair is refused.
    let deal = s
        .create_records(
            a,
            &deals,
            vec![CreateInput {
                properties: props(
                    json!({"dealname": "D", "pipeline": "default", "dealstage": "closedwon"}),
                ),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap()[0]
        .id;
    assert!(s
        .associate(
            a,
            &deals,
            deal,
            &contacts,
            c,
            &[("HUBSPOT_DEFINED".into(), 279)],
            &actor(),
        )
        .await
        .is_err());
    let made = s
        .associate(a, &deals, deal, &contacts, c, &[], &actor())
        .await
        .unwrap();
    assert_eq!(made[0].type_id, 3);
    let label = s
        .create_association_label(
            a,
            &contacts,
            &companies,
            "Former employee",
            "former_employee",
            Some("Former employer"),
        )
        .await
        .unwrap();
    s.associate(
        a,
        &contacts,
        c,
        &companies,
        co,
        &[("USER_DEFINED".into(), label.type_id)],
        &actor(),
    )
    .await
    .unwrap();
    let (found, _) = s
        .associated(a, &companies, co, &contacts, None, 10)
        .await
        .unwrap();
    assert!(found[0]
        .types
        .iter()
        .any(|t| t.label.as_deref() == Some("Former employer")));
    s.dissociate(a, &contacts, c, &companies, co, None, &actor())
        .await
        .unwrap();
    assert!(s
        .associated(a, &companies, co, &contacts, None, 10)
        .await
        .unwrap()
        .0
        .is_empty());
    // Associations to archived records are not shown.
    s.archive_records(a, &contacts, &[c], &actor())
        .await
        .unwrap();
    assert!(s
        .associated(a, &deals, deal, &contacts, None, 10)
        .await
        .unwrap()
        .0
        .is_empty());
}

pub async fn property_definitions(d: Directory) {
    let (a, s) = account(&d, "props").await;
    let input = |v: Value| serde_json::from_value::<kontor_store::PropertyInput>(v).unwrap();
    let def = s
        .create_property(a, "0-1", input(json!({"name": "favourite_colour", "label": "Favourite colour", "type": "enumeration", "fieldType": "select", "groupName": "contactinformation", "options": [{"label": "Red", "value": "red"}, {"label": "Blue", "value": "blue"}], "dataSensitivity": "sensitive"})))
        .await
        .unwrap();
    assert!(def.sensitivity.is_sensitive());
    assert!(matches!(s.create_property(a, "0-1", input(json!({"name": "favourite_colour", "label": "x", "type": "string", "groupName": "contactinformation"}))).await, Err(StoreError::Conflict { .. })));
    assert!(matches!(s.create_property(a, "0-1", input(json!({"name": "Bad Name", "label": "x", "type": "string", "groupName": "contactinformation"}))).await, Err(StoreError::Validation { .. })));
    assert!(matches!(s.create_property(a, "0-1", input(json!({"name": "n", "label": "x", "type": "number", "fieldType": "text", "groupName": "contactinformation"}))).await, Err(StoreError::Validation { .. })));
    assert!(matches!(
        s.create_property(
            a,
            "0-1",
            input(json!({"name": "n", "label": "x", "type": "string", "groupName": "nogroup"}))
        )
        .await,
        Err(StoreError::Validation { .. })
    ));
    let contacts = ot(&s, a, "contacts").await;
    assert!(s
        .create_records(
            a,
            &contacts,
            vec![CreateInput {
                properties: props(json!({"favourite_colour": "green"})),
                associations: vec![]
            }],
            &actor()
        )
        .await
        .is_err());
    s.create_records(
        a,
        &contacts,
        vec![CreateInput {
            properties: props(json!({"favourite_colour": "blue"})),
            associations: vec![],
        }],
        &actor(),
    )
    .await
    .unwrap();
    let upd = s
        .update_property(
            a,
            "0-1",
            "favourite_colour",
            input(json!({"label": "Colour"})),
        )
        .await
        .unwrap();
    assert_eq!(upd.label, "Colour");
    assert!(
        s.archive_property(a, "0-1", "email").await.is_err(),
        "built-in properties cannot be archived"
    );
    s.archive_property(a, "0-1", "favourite_colour")
        .await
        .unwrap();
    assert!(!s
        .properties(a, "0-1", false)
        .await
        .unwrap()
        .iter()
        .any(|p| p.name == "favourite_colour"));
    assert!(s
        .properties(a, "0-1", true)
        .await
        .unwrap()
        .iter()
        .any(|p| p.name == "favourite_colour" && p.archived));
    let g = kontor_store::PropertyGroup {
        name: "extra".into(),
        label: "Extra".into(),
        display_order: 3,
        archived: false,
    };
    s.create_property_group(a, "0-1", g).await.unwrap();
    assert!(s
        .property_groups(a, "0-1")
        .await
        .unwrap()
        .iter()
        .any(|g| g.name == "extra"));
    s.archive_property_group(a, "0-1", "extra").await.unwrap();
    assert!(
        s.archive_property_group(a, "0-1", "contactinformation")
            .await
            .is_err(),
        "a group with properties stays"
    );
}

pub async fn custom_objects(d: Directory) {
    let (a, s) = account(&d, "custom").await;
    let input: SchemaInput = serde_json::from_value(json!({
        "name": "cars", "labels": {"singular": "Car", "plural": "Cars"}, "primaryDisplayProperty": "model",
        "requiredProperties": ["model"], "searchableProperties": ["model"],
        "properties": [{"name": "model", "label": "Model", "type": "string", "fieldType": "text"}, {"name": "year", "label": "Year", "type": "number", "fieldType": "number"}],
        "associatedObjects": ["CONTACT"]
    }))
    .unwrap();
    let schema = s.create_schema(a, input.clone()).await.unwrap();
    assert_eq!(schema.object_type_id, "2-1");
    assert_eq!(schema.fully_qualified_name, format!("p{a}_cars"));
    assert!(matches!(
        s.create_schema(a, input).await,
        Err(StoreError::Conflict { .. })
    ));
    for key in ["2-1", "cars", &format!("p{a}_cars"), "p_cars"] {
        assert_eq!(
            s.object_type(a, key).await.unwrap().unwrap().type_id,
            "2-1",
            "{key}"
        );
    }
    let cars = ot(&s, a, "cars").await;
    assert!(
        s.create_records(
            a,
            &cars,
            vec![CreateInput {
                properties: props(json!({"year": 1999})),
                associations: vec![]
            }],
            &actor()
        )
        .await
        .is_err(),
        "model is required"
    );
    let car = s
        .create_records(
            a,
            &cars,
            vec![CreateInput {
                properties: props(json!({"model": "Volvo 240", "year": 1989})),
                associations: vec![],
            }],
            &actor(),
        )
        .await
        .unwrap();
    assert!(
        car[0].props.contains_key("hs_createdate")
            && car[0].props.contains_key("hs_lastmodifieddate")
    );
    let contacts = ot(&s, a, "contacts").await;
    let c = s
        .create_records(a, &contacts, vec![CreateInput::default()], &actor())
        .await
        .unwrap()[0]
        .id;
    s.associate(a, &cars, car[0].id, &contacts, c, &[], &actor())
        .await
        .unwrap();
    assert_eq!(
        s.associated(a, &contacts, c, &cars, None, 10)
            .await
            .unwrap()
            .0[0]
            .to_id,
        car[0].id
    );
    assert!(
        s.archive_schema(a, "cars").await.is_err(),
        "a schema with records stays"
    );
    s.archive_records(a, &cars, &[car[0].id], &actor())
        .await
        .unwrap();
    s.archive_schema(a, "cars").await.unwrap();
    assert!(s.object_type(a, "cars").await.unwrap().is_none());
}
