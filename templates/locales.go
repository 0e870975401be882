package templates

import (
	"strconv"
	"strings"
)

// localeData is the part of a Moment.js locale that formatting reads. The
// values are those of moment's own locale files (MIT, moment/moment
// src/locale/{en,fr,es,sw,ne,hi}.js as published in moment 2.31.0, the
// release current npm installs resolve to), because config authors saw
// moment's output when they wrote their date formats. Eras (AD/BC, tokens N
// and y) are defined once on moment's global en locale and inherited by
// every locale, so they are not per-locale data here.
type localeData struct {
	months []string
	// monthsFormat, when set, is used instead of months for MMMM when the
	// format has a day before the month (moment's "format" vs "standalone"
	// month names, used by hi).
	monthsFormat []string
	monthsShort  []string
	// monthsShortNoDot, when set, is used for MMM when the format contains
	// "-MMM-" (es abbreviates with a dot except inside dashed dates).
	monthsShortNoDot []string
	weekdays         []string
	weekdaysShort    []string
	weekdaysMin      []string
	longDate         map[string]string // LT LTS L LL LLL LLLL
	ordinal          func(n int, period string) string
	meridiem         func(hour, minute int, lower bool) string
	dow, doy         int  // first day of week; day of January always in week 1 is 7+dow-doy
	devanagari       bool // postformat: ASCII digits become Devanagari (ne, hi)
	invalidDate      string
}

func split(s string) []string { return strings.Split(s, "_") }

// defaultMeridiem is moment's base-config meridiem, used by locales that do
// not define their own.
func defaultMeridiem(hour, _ int, lower bool) string {
	if hour > 11 {
		if lower {
			return "pm"
		}
		return "PM"
	}
	if lower {
		return "am"
	}
	return "AM"
}

// plainOrdinal is moment's base-config ordinal ("%d").
func plainOrdinal(n int, _ string) string { return strconv.Itoa(n) }

var localeEN = &localeData{
	months:        split("January_February_March_April_May_June_July_August_September_October_November_December"),
	monthsShort:   split("Jan_Feb_Mar_Apr_May_Jun_Jul_Aug_Sep_Oct_Nov_Dec"),
	weekdays:      split("Sunday_Monday_Tuesday_Wednesday_Thursday_Friday_Saturday"),
	weekdaysShort: split("Sun_Mon_Tue_Wed_Thu_Fri_Sat"),
	weekdaysMin:   split("Su_Mo_Tu_We_Th_Fr_Sa"),
	longDate: map[string]string{
		"LTS": "h:mm:ss A", "LT": "h:mm A", "L": "MM/DD/YYYY", "LL": "MMMM D, YYYY",
		"LLL": "MMMM D, YYYY h:mm A", "LLLL": "dddd, MMMM D, YYYY h:mm A",
	},
	ordinal: func(n int, _ string) string {
		b := n % 10
		suffix := "th"
		if (n%100)/10 != 1 {
			switch b {
			case 1, -1:
				suffix = "st"
			case 2, -2:
				suffix = "nd"
			case 3, -3:
				suffix = "rd"
			}
		}
		return strconv.Itoa(n) + suffix
	},
	meridiem:    defaultMeridiem,
	dow:         0,
	doy:         6,
	invalidDate: "Invalid date",
}

var localeFR = &localeData{
	months:        split("janvier_février_mars_avril_mai_juin_juillet_août_septembre_octobre_novembre_décembre"),
	monthsShort:   split("janv._févr._mars_avr._mai_juin_juil._août_sept._oct._nov._déc."),
	weekdays:      split("dimanche_lundi_mardi_mercredi_jeudi_vendredi_samedi"),
	weekdaysShort: split("dim._lun._mar._mer._jeu._ven._sam."),
	weekdaysMin:   split("di_lu_ma_me_je_ve_sa"),
	longDate: map[string]string{
		"LT": "HH:mm", "LTS": "HH:mm:ss", "L": "DD/MM/YYYY", "LL": "D MMMM YYYY",
		"LLL": "D MMMM YYYY HH:mm", "LLLL": "dddd D MMMM YYYY HH:mm",
	},
	ordinal: func(n int, period string) string {
		s := strconv.Itoa(n)
		switch period {
		case "D":
			if n == 1 {
				return s + "er"
			}
			return s
		case "w", "W":
			if n == 1 {
				return s + "re"
			}
			return s + "e"
		default:
			if n == 1 {
				return s + "er"
			}
			return s + "e"
		}
	},
	meridiem:    defaultMeridiem,
	dow:         1,
	doy:         4,
	invalidDate: "Invalid date",
}

var localeES = &localeData{
	months:           split("enero_febrero_marzo_abril_mayo_junio_julio_agosto_septiembre_octubre_noviembre_diciembre"),
	monthsShort:      split("ene._feb._mar._abr._may._jun._jul._ago._sep._oct._nov._dic."),
	monthsShortNoDot: split("ene_feb_mar_abr_may_jun_jul_ago_sep_oct_nov_dic"),
	weekdays:         split("domingo_lunes_martes_miércoles_jueves_viernes_sábado"),
	weekdaysShort:    split("dom._lun._mar._mié._jue._vie._sáb."),
	weekdaysMin:      split("do_lu_ma_mi_ju_vi_sá"),
	longDate: map[string]string{
		"LT": "H:mm", "LTS": "H:mm:ss", "L": "DD/MM/YYYY", "LL": "D [de] MMMM [de] YYYY",
		"LLL": "D [de] MMMM [de] YYYY H:mm", "LLLL": "dddd, D [de] MMMM [de] YYYY H:mm",
	},
	ordinal:     func(n int, _ string) string { return strconv.Itoa(n) + "º" },
	meridiem:    defaultMeridiem,
	dow:         1,
	doy:         4,
	invalidDate: "Fecha inválida",
}

var localeSW = &localeData{
	months:        split("Januari_Februari_Machi_Aprili_Mei_Juni_Julai_Agosti_Septemba_Oktoba_Novemba_Desemba"),
	monthsShort:   split("Jan_Feb_Mac_Apr_Mei_Jun_Jul_Ago_Sep_Okt_Nov_Des"),
	weekdays:      split("Jumapili_Jumatatu_Jumanne_Jumatano_Alhamisi_Ijumaa_Jumamosi"),
	weekdaysShort: split("Jpl_Jtat_Jnne_Jtan_Alh_Ijm_Jmos"),
	weekdaysMin:   split("J2_J3_J4_J5_Al_Ij_J1"),
	longDate: map[string]string{
		"LT": "hh:mm A", "LTS": "HH:mm:ss", "L": "DD.MM.YYYY", "LL": "D MMMM YYYY",
		"LLL": "D MMMM YYYY HH:mm", "LLLL": "dddd, D MMMM YYYY HH:mm",
	},
	ordinal:     plainOrdinal,
	meridiem:    defaultMeridiem,
	dow:         1,
	doy:         7,
	invalidDate: "Invalid date",
}

var localeNE = &localeData{
	months:        split("जनवरी_फेब्रुवरी_मार्च_अप्रिल_मई_जुन_जुलाई_अगष्ट_सेप्टेम्बर_अक्टोबर_नोभेम्बर_डिसेम्बर"),
	monthsShort:   split("जन._फेब्रु._मार्च_अप्रि._मई_जुन_जुलाई._अग._सेप्ट._अक्टो._नोभे._डिसे."),
	weekdays:      split("आइतबार_सोमबार_मङ्गलबार_बुधबार_बिहिबार_शुक्रबार_शनिबार"),
	weekdaysShort: split("आइत._सोम._मङ्गल._बुध._बिहि._शुक्र._शनि."),
	weekdaysMin:   split("आ._सो._मं._बु._बि._शु._श."),
	longDate: map[string]string{
		"LT": "Aको h:mm बजे", "LTS": "Aको h:mm:ss बजे", "L": "DD/MM/YYYY", "LL": "D MMMM YYYY",
		"LLL": "D MMMM YYYY, Aको h:mm बजे", "LLLL": "dddd, D MMMM YYYY, Aको h:mm बजे",
	},
	ordinal: plainOrdinal,
	meridiem: func(hour, _ int, _ bool) string {
		switch {
		case hour < 3:
			return "राति"
		case hour < 12:
			return "बिहान"
		case hour < 16:
			return "दिउँसो"
		case hour < 20:
			return "साँझ"
		default:
			return "राति"
		}
	},
	dow:         0,
	doy:         6,
	devanagari:  true,
	invalidDate: "Invalid date",
}

var localeHI = &localeData{
	months:        split("जनवरी_फरवरी_मार्च_अप्रैल_मई_जून_जुलाई_अगस्त_सितंबर_अक्टूबर_नवंबर_दिसंबर"),
	monthsFormat:  split("जनवरी_फ़रवरी_मार्च_अप्रैल_मई_जून_जुलाई_अगस्त_सितम्बर_अक्टूबर_नवम्बर_दिसम्बर"),
	monthsShort:   split("जन._फ़र._मार्च_अप्रै._मई_जून_जुल._अग._सित._अक्टू._नव._दिस."),
	weekdays:      split("रविवार_सोमवार_मंगलवार_बुधवार_गुरूवार_शुक्रवार_शनिवार"),
	weekdaysShort: split("रवि_सोम_मंगल_बुध_गुरू_शुक्र_शनि"),
	weekdaysMin:   split("र_सो_मं_बु_गु_शु_श"),
	longDate: map[string]string{
		"LT": "A h:mm बजे", "LTS": "A h:mm:ss बजे", "L": "DD/MM/YYYY", "LL": "D MMMM YYYY",
		"LLL": "D MMMM YYYY, A h:mm बजे", "LLLL": "dddd, D MMMM YYYY, A h:mm बजे",
	},
	ordinal: plainOrdinal,
	meridiem: func(hour, _ int, _ bool) string {
		switch {
		case hour < 4:
			return "रात"
		case hour < 10:
			return "सुबह"
		case hour < 17:
			return "दोपहर"
		case hour < 20:
			return "शाम"
		default:
			return "रात"
		}
	},
	dow:         0,
	doy:         6,
	devanagari:  true,
	invalidDate: "Invalid date",
}

var locales = map[string]*localeData{
	"en": localeEN, "fr": localeFR, "es": localeES, "sw": localeSW, "ne": localeNE, "hi": localeHI,
}

// lookupLocale resolves a locale code the way moment's chooseLocale does for
// the locales we carry: case-insensitive, "_" read as "-", and a regional
// variant ("fr-CA") falls back to its language. Unknown codes fall back to en,
// moment's global locale, as `moment().locale(unknown)` keeps the global one.
func lookupLocale(code string) *localeData {
	c := strings.ToLower(strings.Replace(code, "_", "-", 1))
	if l, ok := locales[c]; ok {
		return l
	}
	if i := strings.IndexByte(c, '-'); i > 0 {
		if l, ok := locales[c[:i]]; ok {
			return l
		}
	}
	return localeEN
}

// longDateFormat returns the locale's expansion of an L-family token; the
// lowercase forms (l, ll, lll, llll) are derived from the uppercase ones by
// shortening MMMM, MM, DD and dddd by one letter, as moment does.
func (l *localeData) longDateFormat(key string) (string, bool) {
	if f, ok := l.longDate[key]; ok {
		return f, true
	}
	upper, ok := l.longDate[strings.ToUpper(key)]
	if !ok || key == strings.ToUpper(key) {
		return "", false
	}
	var b strings.Builder
	for _, tok := range tokenizeFormat(upper) {
		switch tok {
		case "MMMM", "MM", "DD", "dddd":
			b.WriteString(tok[1:])
		default:
			b.WriteString(tok)
		}
	}
	return b.String(), true
}
