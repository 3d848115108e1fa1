"""`crm.objects.search_api.do_search`: operators, filter groups, sorts, query, paging."""

import pytest
from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest
from hubspot.crm.objects.exceptions import ApiException

from helpers import batch_create, create, error_body

PEOPLE = [
    {
        "firstname": "Ada",
        "lastname": "Lovelace",
        "email": "ada@analytical.org",
        "num_employees": "10",
        "city": "London",
        "lifecyclestage": "lead",
        "notes_last_contacted": "2024-05-01T12:00:00.000Z",
    },
    {
        "firstname": "Grace",
        "lastname": "Hopper",
        "email": "grace@navy.mil",
        "num_employees": "9",
        "city": "Arlington",
        "lifecyclestage": "customer",
        "notes_last_contacted": "2024-06-01T00:00:00.000Z",
    },
    {
        "firstname": "Alan",
        "lastname": "Turing",
        "email": "alan@bletchley.uk",
        "num_employees": "100",
        "lifecyclestage": "customer",
    },
    {
        "firstname": "Katherine",
        "lastname": "Johnson",
        "email": "katherine@nasa.gov",
        "city": "White Sulphur Springs",
        "lifecyclestage": "lead",
    },
]


@pytest.fixture
def people(client):
    made = batch_create(client, "contacts", PEOPLE)
    return {r.properties["firstname"]: r.id for r in made}


def search(client, object_type="contacts", **kwargs):
    res = client.crm.objects.search_api.do_search(
        object_type, PublicObjectSearchRequest(**kwargs)
    )
    assert res is not None
    return res


def one_filter(**f):
    return [FilterGroup(filters=[Filter(**f)])]


def names(res):
    return sorted(r.properties["firstname"] for r in res.results)


def filtered(client, **f):
    res = search(client, filter_groups=one_filter(**f), properties=["firstname"], limit=100)
    assert res.total == len(res.results)
    return names(res)


def test_empty_search_returns_everything_with_total(client, people):
    res = search(client)
    assert res.total == 4
    assert {r.id for r in res.results} == set(people.values())
    assert res.paging is None


def test_eq(client, people):
    assert filtered(client, property_name="lastname", operator="EQ", value="Lovelace") == ["Ada"]


def test_eq_on_enumeration(client, people):
    assert filtered(client, property_name="lifecyclestage", operator="EQ", value="customer") == [
        "Alan",
        "Grace",
    ]


def test_eq_on_strings_ignores_case(client, people):
    assert filtered(client, property_name="lastname", operator="EQ", value="LOVELACE") == ["Ada"]


def test_neq(client, people):
    assert filtered(client, property_name="lifecyclestage", operator="NEQ", value="lead") == [
        "Alan",
        "Grace",
    ]


def test_lt_compares_numbers_numerically(client, people):
    assert filtered(client, property_name="num_employees", operator="LT", value="10") == ["Grace"]


def test_lte(client, people):
    assert filtered(client, property_name="num_employees", operator="LTE", value="10") == [
        "Ada",
        "Grace",
    ]


def test_gt(client, people):
    assert filtered(client, property_name="num_employees", operator="GT", value="9") == [
        "Ada",
        "Alan",
    ]


def test_gte(client, people):
    assert filtered(client, property_name="num_employees", operator="GTE", value="10") == [
        "Ada",
        "Alan",
    ]


def test_between_is_inclusive(client, people):
    assert filtered(
        client, property_name="num_employees", operator="BETWEEN", value="9", high_value="10"
    ) == ["Ada", "Grace"]


def test_between_on_datetime_mixes_epoch_ms_and_iso(client, people):
    # 2024-05-01T00:00:00Z as epoch milliseconds, up to an ISO instant.
    assert filtered(
        client,
        property_name="notes_last_contacted",
        operator="BETWEEN",
        value="1714521600000",
        high_value="2024-05-31T00:00:00Z",
    ) == ["Ada"]


def test_gte_on_datetime_with_epoch_ms(client, people):
    # 2024-06-01T00:00:00Z
    assert filtered(
        client, property_name="notes_last_contacted", operator="GTE", value="1717200000000"
    ) == ["Grace"]


def test_numeric_filter_value_sent_as_a_number(client, people):
    assert filtered(client, property_name="num_employees", operator="EQ", value=100) == ["Alan"]


def test_boolean_filter_value_sent_as_a_boolean(client, people):
    from hubspot.crm.objects import SimplePublicObjectInput

    client.crm.objects.basic_api.update(
        "contacts", people["Grace"], SimplePublicObjectInput(properties={"hs_email_optout": True})
    )
    assert filtered(client, property_name="hs_email_optout", operator="EQ", value=True) == ["Grace"]


def test_in(client, people):
    assert filtered(
        client, property_name="lastname", operator="IN", values=["Lovelace", "Turing"]
    ) == ["Ada", "Alan"]


def test_not_in(client, people):
    assert filtered(
        client, property_name="lifecyclestage", operator="NOT_IN", values=["customer"]
    ) == ["Ada", "Katherine"]


def test_has_property(client, people):
    assert filtered(client, property_name="city", operator="HAS_PROPERTY") == [
        "Ada",
        "Grace",
        "Katherine",
    ]


def test_not_has_property(client, people):
    assert filtered(client, property_name="num_employees", operator="NOT_HAS_PROPERTY") == [
        "Katherine"
    ]


def test_contains_token(client, people):
    assert filtered(client, property_name="city", operator="CONTAINS_TOKEN", value="springs") == [
        "Katherine"
    ]


def test_contains_token_with_wildcard(client, people):
    assert filtered(
        client, property_name="email", operator="CONTAINS_TOKEN", value="*@nasa.gov"
    ) == ["Katherine"]


def test_not_contains_token(client, people):
    assert filtered(
        client, property_name="firstname", operator="NOT_CONTAINS_TOKEN", value="ada"
    ) == ["Alan", "Grace", "Katherine"]


def test_filters_in_a_group_are_anded(client, people):
    res = search(
        client,
        filter_groups=[
            FilterGroup(
                filters=[
                    Filter(property_name="lifecyclestage", operator="EQ", value="customer"),
                    Filter(property_name="num_employees", operator="GT", value="50"),
                ]
            )
        ],
        properties=["firstname"],
    )
    assert res.total == 1
    assert names(res) == ["Alan"]


def test_filter_groups_are_ored(client, people):
    res = search(
        client,
        filter_groups=[
            FilterGroup(filters=[Filter(property_name="lastname", operator="EQ", value="Lovelace")]),
            FilterGroup(filters=[Filter(property_name="lastname", operator="EQ", value="Hopper")]),
            FilterGroup(
                filters=[
                    Filter(property_name="city", operator="HAS_PROPERTY"),
                    Filter(property_name="lifecyclestage", operator="EQ", value="lead"),
                ]
            ),
        ],
        properties=["firstname"],
    )
    assert res.total == 3
    assert names(res) == ["Ada", "Grace", "Katherine"]


def ordered(res):
    return [r.properties["firstname"] for r in res.results]


def test_sort_object_form_descending(client, people):
    res = search(
        client,
        filter_groups=one_filter(property_name="num_employees", operator="HAS_PROPERTY"),
        sorts=[{"propertyName": "num_employees", "direction": "DESCENDING"}],
        properties=["firstname", "num_employees"],
    )
    assert ordered(res) == ["Alan", "Ada", "Grace"]


def test_sort_object_form_ascending(client, people):
    res = search(
        client,
        filter_groups=one_filter(property_name="num_employees", operator="HAS_PROPERTY"),
        sorts=[{"propertyName": "num_employees", "direction": "ASCENDING"}],
        properties=["firstname"],
    )
    assert ordered(res) == ["Grace", "Ada", "Alan"]


def test_sort_string_form_is_ascending(client, people):
    res = search(client, sorts=["firstname"], properties=["firstname"])
    assert ordered(res) == ["Ada", "Alan", "Grace", "Katherine"]


def test_sort_dash_form_is_descending(client, people):
    res = search(client, sorts=["-firstname"], properties=["firstname"])
    assert ordered(res) == ["Katherine", "Grace", "Alan", "Ada"]


def test_query_matches_default_searchable_properties(client, people):
    res = search(client, query="Grace", properties=["firstname"])
    assert res.total == 1
    assert names(res) == ["Grace"]
    res = search(client, query="Turing", properties=["firstname"])
    assert names(res) == ["Alan"]


def test_query_combines_with_filters(client, people):
    res = search(
        client,
        query="Lovelace",
        filter_groups=one_filter(property_name="lifecyclestage", operator="EQ", value="customer"),
    )
    assert res.total == 0
    assert res.results == []


def test_paging_with_after_and_total(client, people):
    first = search(client, sorts=["firstname"], properties=["firstname"], limit=3)
    assert first.total == 4
    assert ordered(first) == ["Ada", "Alan", "Grace"]
    after = first.paging.next.after
    assert after
    second = search(client, sorts=["firstname"], properties=["firstname"], limit=3, after=after)
    assert second.total == 4
    assert ordered(second) == ["Katherine"]
    assert second.paging is None


def test_paging_without_sorts_is_stable(client):
    made = batch_create(client, "contacts", [{"firstname": f"P{i:02d}"} for i in range(25)])
    seen, after = [], None
    for _ in range(5):
        kwargs = {"limit": 10, "properties": ["firstname"]}
        if after is not None:
            kwargs["after"] = after
        res = search(client, **kwargs)
        assert res.total == 25
        seen.extend(r.id for r in res.results)
        if res.paging is None:
            break
        after = res.paging.next.after
    assert len(seen) == 25
    assert set(seen) == {m.id for m in made}


def test_paging_past_10000_results_is_400(client, people):
    with pytest.raises(ApiException) as e:
        search(client, after="10000")
    assert e.value.status == 400
    assert error_body(e.value)["category"] == "VALIDATION_ERROR"


def test_properties_selects_returned_properties(client, people):
    res = search(
        client,
        filter_groups=one_filter(property_name="lastname", operator="EQ", value="Lovelace"),
        properties=["city", "num_employees"],
    )
    [r] = res.results
    assert r.id == people["Ada"]
    assert r.properties["city"] == "London"
    assert r.properties["num_employees"] == "10"
    assert r.properties["hs_object_id"] == people["Ada"]
    assert "firstname" not in r.properties


def test_default_properties_without_properties(client, people):
    res = search(
        client, filter_groups=one_filter(property_name="lastname", operator="EQ", value="Hopper")
    )
    [r] = res.results
    assert r.properties["firstname"] == "Grace"
    assert r.properties["email"] == "grace@navy.mil"
    assert "city" not in r.properties


def test_archived_records_are_not_found(client, people):
    client.crm.objects.basic_api.archive("contacts", people["Ada"])
    res = search(client, properties=["firstname"])
    assert res.total == 3
    assert "Ada" not in names(res)


def test_search_sees_updates_immediately(client, people):
    from hubspot.crm.objects import SimplePublicObjectInput

    client.crm.objects.basic_api.update(
        "contacts", people["Alan"], SimplePublicObjectInput(properties={"city": "Wilmslow"})
    )
    assert filtered(client, property_name="city", operator="EQ", value="Wilmslow") == ["Alan"]


def test_search_on_hs_object_id(client, people):
    res = search(
        client,
        filter_groups=one_filter(property_name="hs_object_id", operator="EQ", value=people["Grace"]),
        properties=["firstname"],
    )
    assert names(res) == ["Grace"]


def test_search_on_companies_and_deals(client):
    create(client, "companies", {"name": "Initech", "domain": "initech.com"})
    create(client, "companies", {"name": "Globex", "domain": "globex.com"})
    res = search(
        client,
        "companies",
        filter_groups=one_filter(property_name="domain", operator="EQ", value="globex.com"),
    )
    assert [r.properties["name"] for r in res.results] == ["Globex"]

    for name, amount in (("Small", "500"), ("Big", "50000")):
        create(
            client,
            "deals",
            {"dealname": name, "amount": amount, "pipeline": "default", "dealstage": "closedwon"},
        )
    res = search(
        client,
        "deals",
        filter_groups=one_filter(property_name="amount", operator="GT", value="1000"),
    )
    assert [r.properties["dealname"] for r in res.results] == ["Big"]
    assert res.results[0].properties["amount"] == "50000"


def test_search_unknown_property_is_400(client, people):
    with pytest.raises(ApiException) as e:
        search(client, filter_groups=one_filter(property_name="no_such_prop", operator="EQ", value="x"))
    assert e.value.status == 400
    assert error_body(e.value)["category"] == "VALIDATION_ERROR"
