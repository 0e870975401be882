package transitions

import "sentinel-go/jsv"

// IsValidSubmission is the README's "valid submission": an xform, or a form
// of settings.forms that is public or whose submitter (or the submitter's
// parent's contact) has a phone.
func IsValidSubmission(env *Env, doc Doc) bool {
	if doc["content_type"] == "xml" {
		return true
	}
	form, _ := doc["form"].(string)
	if form == "" || !env.Settings().HasForm(form) {
		return false
	}
	if env.Settings().Form(form)["public_form"] == true {
		return true
	}
	contact := jsv.Map(doc["contact"])
	if jsv.Truthy(contact["phone"]) {
		return true
	}
	v, _ := jsv.Get(contact, "parent.contact.phone")
	return jsv.Truthy(v)
}
