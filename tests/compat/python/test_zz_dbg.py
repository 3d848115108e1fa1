from test_associations import *
def test_dbg(client):
    c, co = contact(client), company(client)
    client.crm.associations.v4.basic_api.create("contacts", c.id, "companies", co.id, [spec(1), spec(279)])
    print("before", associated(client, "contacts", c.id, "companies"), associated(client, "companies", co.id, "contacts"))
    body = BatchInputPublicAssociationMultiPost(inputs=[PublicAssociationMultiPost(_from=PublicObjectId(id=c.id), to=PublicObjectId(id=co.id), types=[spec(1)])])
    print(client.crm.associations.v4.batch_api.api_client.sanitize_for_serialization(body))
    client.crm.associations.v4.batch_api.archive_labels("contacts","companies", body)
    print("after", associated(client, "contacts", c.id, "companies"), associated(client, "companies", co.id, "contacts"))
