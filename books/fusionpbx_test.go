package books_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/books"
)

// FusionPBX's v_xml_cdr (app/xml_cdr/app_config.php, PostgreSQL types),
// of the columns kanca reads and those the test fills beside them, and
// v_xml_cdr_json, where FusionPBX keeps each leg's JSON since 5.4.
const (
	fusionCDRTable = `CREATE TABLE v_xml_cdr (
  xml_cdr_uuid uuid PRIMARY KEY,
  domain_uuid uuid,
  domain_name text,
  direction text,
  context text,
  caller_id_name text,
  caller_id_number text,
  destination_number text,
  start_epoch numeric,
  start_stamp timestamptz,
  answer_epoch numeric,
  answer_stamp timestamptz,
  end_epoch numeric,
  end_stamp timestamptz,
  duration numeric,
  billsec numeric,
  bridge_uuid text,
  leg char(1),
  originating_leg_uuid uuid,
  hangup_cause text,
  hangup_cause_q850 numeric,
  sip_hangup_disposition text,
  xml text,
  json jsonb,
  insert_date timestamptz
)`
	fusionJSONTable = `CREATE TABLE v_xml_cdr_json (
  xml_cdr_json_uuid uuid PRIMARY KEY,
  xml_cdr_uuid uuid,
  domain_uuid uuid,
  json jsonb,
  insert_date timestamptz
)`
)

// fusionLayouts are where FusionPBX keeps a leg's record: the json column
// (cdr format json, up to 5.3), v_xml_cdr_json (since 5.4), the xml
// column (cdr format xml); and a table without the leg and start_stamp
// columns kanca reads when they are there.
var fusionLayouts = []string{"json column", "v_xml_cdr_json", "xml column", "json column, fewer columns"}

// TestRecoverFromFusionPBX does what TestRecoverFromJSONCDR does with the
// same legs as FusionPBX keeps them in a real PostgreSQL (its fusionpbx
// database, a row per leg in v_xml_cdr, logging B legs too), each
// recording in a schema of its own and in one of FusionPBX's layouts,
// and requires the same figures.
func TestRecoverFromFusionPBX(t *testing.T) {
	dsn, admin := postgres(t)
	_, err := admin.Exec("CREATE DATABASE fusionpbx")
	require.NoError(t, err)
	dsn = strings.Replace(dsn, "/asteriskcdrdb?", "/fusionpbx?", 1)
	cfg, err := pgx.ParseConfig(strings.Replace(dsn, "?loc=UTC", "", 1))
	require.NoError(t, err)
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })

	recs := freeswitchRecordings(t)
	for i, rec := range recs {
		loadFusion(t, db, fmt.Sprintf("r%d", i), fusionLayouts[i%len(fusionLayouts)], writeXMLCDRs(t, rec, t.TempDir()))
	}
	// One connection pool per recording, each kept to its schema.
	bks := map[string]books.Books{}
	for i, rec := range recs {
		b, err := books.Open(fmt.Sprintf("%s&search_path=r%d", dsn, i))
		require.NoError(t, err)
		t.Cleanup(func() { b.Close() })
		bks[rec.dir] = b
	}
	fromJSON, jsonDiffers := score(t, recs, func(rec recording) books.Books { return jsonCDR(t, rec) }, nil)
	got, differ := recoverFreeSWITCH(t, "FusionPBX's v_xml_cdr", recs, func(rec recording) books.Books { return bks[rec.dir] })
	require.Equal(t, fromJSON.String(), got.String(), "FusionPBX's records tell what mod_json_cdr's do")
	require.Equal(t, jsonDiffers, differ)

	// FusionPBX's own xml_cdr.conf.xml sets log-b-leg false: mod_xml_cdr
	// posts only the legs no other leg originated (those mod_json_cdr
	// names a_<uuid>), and the B legs are told from their records.
	t.Run("A legs only", func(t *testing.T) {
		aOnly := map[string]books.Books{}
		for i, rec := range recs {
			legs := writeXMLCDRs(t, rec, t.TempDir())
			for name := range legs {
				if !strings.HasPrefix(name, "a_") {
					delete(legs, name)
				}
			}
			schema := fmt.Sprintf("a%d", i)
			loadFusion(t, db, schema, fusionLayouts[0], legs)
			b, err := books.Open(dsn + "&search_path=" + schema)
			require.NoError(t, err)
			t.Cleanup(func() { b.Close() })
			aOnly[rec.dir] = b
		}
		blind, _ := score(t, recs, nil, nil)
		got, differ := score(t, recs, func(rec recording) books.Books { return aOnly[rec.dir] }, nil)
		t.Logf("the same as a run that never stopped: from A legs only %v; without books %v", got, blind)
		for _, d := range differ {
			t.Log("differs: ", d)
		}
		require.Greater(t, got.endedSame, blind.endedSame, "the A legs' books change nothing")
		// What differs may only get fewer.
		require.LessOrEqual(t, got.ended-got.endedSame, fusionALegsDiffer)
	})
}

// fusionALegsDiffer is how many calls that ended in the gap differ when
// FusionPBX keeps A legs only: the B legs are told from their A leg's
// record (its originated legs, originate causes and bridge times), which
// does not tell transfers, pickups, parks and queues as the B legs' own
// records do.
const fusionALegsDiffer = 15

// loadFusion writes the legs' XML records into v_xml_cdr in schema as
// FusionPBX's xml_cdr import does in layout: the columns it reads out of
// the variables, and the record as XML or as json_encode of the parsed
// XML.
func loadFusion(t *testing.T, db *sql.DB, schema, layout string, legs map[string][]byte) {
	t.Helper()
	in := func(q string) string { return strings.ReplaceAll(q, " v_xml_cdr", " "+schema+".v_xml_cdr") }
	for _, stmt := range []string{"CREATE SCHEMA " + schema, in(fusionCDRTable), in(fusionJSONTable)} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	for name, x := range legs {
		j := simpleXMLJSON(t, x)
		var rec struct {
			Variables map[string]any `json:"variables"`
		}
		require.NoError(t, json.Unmarshal(j, &rec))
		v := func(k string) any {
			s, _ := rec.Variables[k].(string)
			if s == "" {
				return nil
			}
			return s
		}
		leg := "b"
		if strings.HasPrefix(name, "a_") {
			leg = "a"
		}
		var xmlCol, jsonCol any
		switch layout {
		case "json column", "json column, fewer columns":
			jsonCol = string(j)
		case "xml column":
			xmlCol = string(x)
		}
		uuid := v("uuid")
		_, err := db.Exec(in(`INSERT INTO v_xml_cdr (xml_cdr_uuid, direction, context, caller_id_number, destination_number,
			start_epoch, start_stamp, answer_epoch, end_epoch, end_stamp, billsec, bridge_uuid, leg, hangup_cause,
			hangup_cause_q850, sip_hangup_disposition, xml, json, insert_date)
			VALUES ($1, $2, $3, $4, $5, $6::numeric, to_timestamp($6::numeric), $7, $8::numeric, to_timestamp($8::numeric), $9, $10, $11, $12,
			$13, $14, $15, $16, now())`),
			uuid, v("direction"), v("user_context"), v("caller_id_number"), v("destination_number"),
			v("start_epoch"), v("answer_epoch"), v("end_epoch"), v("billsec"), v("bridge_uuid"), leg, v("hangup_cause"),
			v("hangup_cause_q850"), v("sip_hangup_disposition"), xmlCol, jsonCol)
		require.NoError(t, err, name)
		if layout == "v_xml_cdr_json" {
			_, err := db.Exec(in(`INSERT INTO v_xml_cdr_json (xml_cdr_json_uuid, xml_cdr_uuid, json, insert_date)
				VALUES (gen_random_uuid(), $1, $2, now())`), uuid, string(j))
			require.NoError(t, err, name)
		}
	}
	if layout == "json column, fewer columns" {
		_, err := db.Exec(in("ALTER TABLE v_xml_cdr DROP COLUMN leg, DROP COLUMN start_stamp"))
		require.NoError(t, err)
	}
}
